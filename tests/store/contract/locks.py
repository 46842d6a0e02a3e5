"""Forcing interleavings for race tests. On PostgreSQL, transactions run side by side
and meet only at row and key locks, so a test holds a row from another connection, or
waits until a given number of transactions are stopped at locks. The other stores let
one writer in at a time: there is nothing to hold, and a waiting writer is waiting
as soon as the loop has run it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from mailpool_server.service.ports import Store
from mailpool_server.store.engine import PostgresDatabase
from mailpool_server.store.sql_store import SqlStore

_LOCK_WAITERS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


def _postgres(store: Store) -> AsyncEngine | None:
    if isinstance(store, SqlStore) and isinstance(store.database, PostgresDatabase):
        return store.database.engine
    return None


@asynccontextmanager
async def rows_held(store: Store, select_for_update: str) -> AsyncIterator[None]:
    """PostgreSQL: lock the rows `select_for_update` selects from another connection
    until the block ends. Elsewhere: nothing."""
    engine = _postgres(store)
    if engine is None:
        yield
        return
    async with engine.connect() as connection, connection.begin():
        await connection.execute(text(select_for_update))
        yield


async def until_waiting_on_locks(store: Store, count: int) -> None:
    """Return once `count` transactions wait on a lock (PostgreSQL), or once waiting
    writers have had the loop long enough to reach their wait (elsewhere)."""
    engine = _postgres(store)
    if engine is None:
        for _ in range(50):
            await asyncio.sleep(0)
        return
    async with engine.connect() as connection:
        for _ in range(1000):
            waiting = await connection.scalar(_LOCK_WAITERS)
            await connection.rollback()  # statistics are a snapshot per transaction
            if waiting is not None and waiting >= count:
                return
            await asyncio.sleep(0.005)
    raise AssertionError(f"{count} transaction(s) never waited on a lock")
