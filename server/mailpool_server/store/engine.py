"""Engines, and units of work on PostgreSQL (asyncpg). SQLite's are in sqlite_db.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Protocol

import asyncpg
from asyncpg import PostgresError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)

from mailpool_server.service.errors import StoreContention
from mailpool_server.service.ports import WriteLockTimeout
from mailpool_server.store.base import SessionPort, Unit, no_session
from mailpool_server.store.migrate import upgrade
from mailpool_server.store.pg_slots import Slot, Slots
from mailpool_server.store.sqlite_db import SqliteDatabase

log = logging.getLogger("mailpool.store")
CONNECTIONS_LEFT_OUT = "postgres connections left checked out at close"

LOCK_NOT_AVAILABLE = "55P03"
_READ_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ"
# deadlock_detected, serialization_failure: the transaction lost a race; nothing was
# written, and the same request may simply be sent again.
RETRYABLE = {"40P01", "40001"}


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """PostgreSQL's async engine (asyncpg). SQLite runs on its own engine in
    SqliteDatabase."""
    return create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow)


class Database(Protocol):
    """Opens units of work. Each is one transaction: committed on a clean exit,
    rolled back on an exception."""

    dialect: str

    def unit(
        self, *, write: bool, lock_timeout_s: float | None = None
    ) -> AbstractAsyncContextManager[Unit]: ...

    def lookup(self) -> AbstractAsyncContextManager[Unit]:
        """No transaction: each statement on its own (what one SELECT answers)."""
        ...

    async def dispose(self) -> None: ...


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE of an asyncpg error, raised by the driver or wrapped by SQLAlchemy."""
    if isinstance(error, DBAPIError):
        return getattr(error.orig, "sqlstate", None)
    return getattr(error, "sqlstate", None) if isinstance(error, PostgresError) else None


class PostgresDatabase:
    """Units of work on PostgreSQL: a connection (a slot: pg_slots.py) and a
    transaction each.

    The transaction is the driver's (BEGIN/COMMIT on the asyncpg connection), and
    SQLAlchemy's view of the connection is AUTOCOMMIT, so its statements (the cold
    paths) run inside that transaction without starting one of their own. No ping
    before a unit (a round trip each): a connection the server dropped fails its first
    statement, and its slot is discarded."""

    dialect = "postgresql"

    def __init__(self, engine: AsyncEngine, *, connections: int | None = None) -> None:
        self.engine = engine
        pool = engine.sync_engine.pool
        limit = connections if connections is not None else int(getattr(pool, "size", lambda: 5)())
        self.slots = Slots(engine, limit)

    @asynccontextmanager
    async def unit(
        self, *, write: bool, lock_timeout_s: float | None = None
    ) -> AsyncIterator[Unit]:
        slot = await self.slots.take()
        raw = slot.driver.raw
        try:
            # A read is one snapshot across its statements, as on SQLite; a write
            # runs at READ COMMITTED and meets other writers at row locks.
            begin = "BEGIN" if write else _READ_SNAPSHOT
            if write and lock_timeout_s is not None:
                # A wait on a row or key lock longer than this fails with
                # lock_not_available instead of hanging. (Both statements go in
                # one round trip: a query without parameters may hold several.)
                begin += f"; SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'"
            await raw.execute(begin)
            unit = Unit(slot.driver, partial(_session_on, slot.conn), _close_session)
            try:
                yield unit
                await unit.close(ok=True)
            except BaseException:
                await unit.close(ok=False)
                raise
            await raw.execute("COMMIT")
        except BaseException as error:
            await self._end_failed(slot, error)
            state = sqlstate_of(error)
            if state == LOCK_NOT_AVAILABLE:
                raise WriteLockTimeout() from error
            if state in RETRYABLE:
                raise StoreContention(str(state)) from error
            raise
        self.slots.give(slot)

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[Unit]:
        slot = await self.slots.take()
        try:
            yield Unit(slot.driver, no_session, _close_session)
        except BaseException as error:
            await self._end_failed(slot, error)
            raise
        self.slots.give(slot)

    async def _end_failed(self, slot: Slot, error: BaseException) -> None:
        """Roll the driver's transaction back and give the slot back. A connection that
        may be broken is not given back: the driver said so (a lost socket, a terminated
        backend), or it cannot roll back. Its slot is discarded, and the next unit that
        needs one opens a new connection."""
        raw = slot.driver.raw
        if raw.is_closed() or _connection_lost(error):
            await self.slots.discard(slot)
            return
        try:
            if raw.is_in_transaction():
                await raw.execute("ROLLBACK")
        except Exception:
            # The unit's own error is the one to report; this one only says the
            # connection is no good.
            await self.slots.discard(slot)
            return
        except BaseException:
            await self.slots.discard(slot)
            raise
        self.slots.give(slot)

    async def dispose(self) -> None:
        await self.slots.close()
        # The engine's dispose closes only what is checked in; a connection still out
        # now was taken outside the slots and never given back (or by a unit that
        # did not end when its connection was terminated): a leak, so say so.
        left = int(self.engine.sync_engine.pool.checkedout())  # type: ignore[attr-defined]
        if left:
            log.warning(
                CONNECTIONS_LEFT_OUT,
                extra={"fields": {"connections": left}},
            )
        await self.engine.dispose()


def _connection_lost(error: BaseException) -> bool:
    """Whether the driver's error says the connection itself is gone or unusable (an
    error of the unit's own, or one about a statement, leaves it usable)."""
    state = sqlstate_of(error)
    if state is not None:
        return state[:2] in ("08", "57")  # connection exception, operator intervention
    return isinstance(error, asyncpg.InterfaceError | asyncpg.InternalClientError | OSError)


def _session_on(conn: AsyncConnection) -> SessionPort:
    return AsyncSession(bind=conn, expire_on_commit=False)


async def _close_session(session: SessionPort, ok: bool) -> None:
    assert isinstance(session, AsyncSession)
    try:
        if ok:
            await session.commit()  # flushes; the driver's COMMIT comes after
    finally:
        await session.close()


async def open_database(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> Database:
    """Bring the schema up to date, then open units of work on the URL's backend."""
    if is_sqlite(url):
        sqlite = SqliteDatabase(url, pool_size=pool_size)
        sqlite.migrate()
        return sqlite
    engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    await upgrade(engine)
    return PostgresDatabase(engine, connections=pool_size + max_overflow)
