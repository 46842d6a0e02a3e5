"""PostgreSQL's slots (store/pg_slots.py): connections held open for units of work,
taken in turn, and replaced when one breaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from mailpool_server.store.driver import Sql
from mailpool_server.store.engine import PostgresDatabase, make_engine
from mailpool_server.store.pg_notify import asyncpg_dsn
from tests.conftest import POSTGRES

pytestmark = pytest.mark.skipif(POSTGRES is None, reason="MAILPOOL_TEST_POSTGRES is not set")


@pytest.fixture
async def database() -> AsyncIterator[PostgresDatabase]:
    assert POSTGRES is not None
    database = PostgresDatabase(make_engine(POSTGRES, pool_size=4), connections=2)
    try:
        yield database
    finally:
        await database.dispose()


async def backend_pid(database: PostgresDatabase, *, lookup: bool = True) -> int:
    unit = database.lookup() if lookup else database.unit(write=False)
    async with unit as u:
        row = await u.driver.one(Sql("SELECT pg_backend_pid()"), {})
    assert row is not None
    return int(row[0])


async def hold_every_slot(
    database: PostgresDatabase, release: asyncio.Event
) -> list[asyncio.Task[None]]:
    """Two units (the database has two slots) holding theirs until `release`; returns
    once both hold one."""
    held = [asyncio.Event(), asyncio.Event()]

    async def hold(n: int) -> None:
        async with database.lookup():
            held[n].set()
            await release.wait()

    holders = [asyncio.create_task(hold(n)) for n in range(2)]
    await asyncio.gather(*(event.wait() for event in held))
    return holders


async def test_units_reuse_the_connections_they_opened(database: PostgresDatabase) -> None:
    first = await backend_pid(database)
    assert await backend_pid(database, lookup=False) == first
    assert (database.slots.opened, database.slots.busy) == (1, 0)


async def test_a_unit_waits_while_every_slot_is_busy(database: PostgresDatabase) -> None:
    release = asyncio.Event()
    holders = await hold_every_slot(database, release)
    waiter = asyncio.create_task(backend_pid(database))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiter.done() and database.slots.opened == 2
    release.set()
    await asyncio.gather(*holders)
    await waiter
    assert (database.slots.opened, database.slots.busy) == (2, 0)


async def test_a_waiter_that_gives_up_takes_no_slot_with_it(database: PostgresDatabase) -> None:
    release = asyncio.Event()
    holders = await hold_every_slot(database, release)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await backend_pid(database)
    release.set()
    await asyncio.gather(*holders)
    # Both slots are free again: two units at once still find one each.
    pids = await asyncio.gather(backend_pid(database), backend_pid(database))
    assert len(pids) == 2 and database.slots.busy == 0


async def test_a_connection_the_server_dropped_is_replaced(database: PostgresDatabase) -> None:
    assert POSTGRES is not None
    dropped = await backend_pid(database)
    admin = await asyncpg.connect(asyncpg_dsn(POSTGRES))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", dropped)
    finally:
        await admin.close()
    # The unit on the dead connection fails and gives its slot up; the next one opens
    # a new connection.
    with pytest.raises(
        (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)
    ):
        async with database.unit(write=True) as unit:
            await unit.session().execute(text("SELECT 1"))
    assert await backend_pid(database) != dropped
    assert database.slots.busy == 0


async def test_a_units_own_error_keeps_its_connection(database: PostgresDatabase) -> None:
    before = await backend_pid(database)
    with pytest.raises(LookupError):
        async with database.unit(write=True):
            raise LookupError("the use case gave up")
    assert await backend_pid(database) == before  # rolled back, and kept
