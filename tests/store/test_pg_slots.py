"""PostgreSQL's slots (store/pg_slots.py): connections held open for units of work,
taken in turn, and replaced when one breaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from mailpool_server.store.base import Unit
from mailpool_server.store.driver import PgDriver, Sql
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


def checked_out(database: PostgresDatabase) -> int:
    """Connections SQLAlchemy's pool has handed out and not got back."""
    return int(database.engine.sync_engine.pool.checkedout())  # type: ignore[attr-defined]


async def test_a_taker_that_gives_up_while_its_connection_opens_leaves_it_to_the_next(
    database: PostgresDatabase,
) -> None:
    taker = asyncio.create_task(backend_pid(database))
    await asyncio.sleep(0)  # one step: the taker has begun opening the first connection
    assert database.slots.opened == 1 and not taker.done()
    taker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await taker
    # Two units at once fill both slots, one of them with the connection opened for
    # the taker that left (as soon as it is open): none is lost outside the slots.
    await asyncio.gather(backend_pid(database), backend_pid(database))
    assert (database.slots.opened, database.slots.busy, checked_out(database)) == (2, 0, 2)


async def test_closing_waits_for_a_running_unit_and_then_closes_its_connection(
    database: PostgresDatabase,
) -> None:
    release, holding = asyncio.Event(), asyncio.Event()
    held: list[asyncpg.Connection] = []

    async def hold() -> None:
        async with database.lookup() as unit:
            held.append(raw_of(unit))
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    idle_raw = await raw_of_an_idle_slot(database)  # a second slot, idle again
    closing = asyncio.create_task(database.slots.close())
    for _ in range(1000):  # the idle connection closes at once
        if idle_raw.is_closed():
            break
        await asyncio.sleep(0.001)
    assert idle_raw.is_closed() and not closing.done()
    release.set()
    await asyncio.gather(holder, closing)
    assert held[0].is_closed() and checked_out(database) == 0
    await backend_pid(database)  # later units open new connections
    assert database.slots.opened == 1


async def test_closing_ends_the_connection_of_a_unit_that_outlives_the_grace(
    database: PostgresDatabase,
) -> None:
    started = asyncio.Event()

    async def sleeper() -> None:
        async with database.lookup() as unit:
            started.set()
            await unit.driver.one(Sql("SELECT pg_sleep(60)"), {})

    task = asyncio.create_task(sleeper())
    await started.wait()
    await database.slots.close(grace_s=0.05)
    with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresError, OSError)):
        await task  # the statement failed when its connection was terminated
    assert (database.slots.busy, checked_out(database)) == (0, 0)


async def raw_of_an_idle_slot(database: PostgresDatabase) -> asyncpg.Connection:
    async with database.lookup() as unit:
        return raw_of(unit)


def raw_of(unit: Unit) -> asyncpg.Connection:
    assert isinstance(unit.driver, PgDriver)
    return unit.driver.raw
