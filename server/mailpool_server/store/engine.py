"""Engine and units of work for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from mailpool_server.service.errors import StoreContention
from mailpool_server.service.ports import WriteLockTimeout

_WRITE = "mailpool_write"
LOCK_NOT_AVAILABLE = "55P03"
# deadlock_detected, serialization_failure: the transaction lost a race; nothing was
# written, and the same request may simply be sent again.
RETRYABLE = {"40P01", "40001"}


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """An engine with mailpool's connection settings for the URL's backend."""
    if is_sqlite(url):
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver so that we can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Other processes (CLI, a second dispatcher) wait for the write lock.
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the database lock up front: a deferred transaction that
        # upgrades from read to write can fail with SQLITE_BUSY instead of waiting.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Opens units of work. Each is one transaction: committed on a clean exit,
    rolled back on an exception."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queueing this process's writers here
        # instead of in SQLite's busy handler (which sleeps and polls) keeps
        # throughput up; correctness still comes from BEGIN IMMEDIATE.
        self._sqlite_writer = asyncio.Lock() if self.sqlite else None

    @asynccontextmanager
    async def session(
        self, *, write: bool, lock_timeout_s: float | None = None
    ) -> AsyncIterator[AsyncSession]:
        if write and self._sqlite_writer is not None:
            try:
                await asyncio.wait_for(self._sqlite_writer.acquire(), lock_timeout_s)
            except TimeoutError:
                raise WriteLockTimeout() from None
            try:
                async with self._open(write=True) as session:
                    yield session
            finally:
                self._sqlite_writer.release()
        else:
            async with self._open(write=write) as session:
                if write and lock_timeout_s is not None:
                    # PostgreSQL: a wait on a row or key lock longer than this fails
                    # with lock_not_available instead of hanging.
                    await session.execute(
                        text(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
                    )
                try:
                    yield session
                except DBAPIError as error:
                    state = getattr(error.orig, "sqlstate", None)
                    if state == LOCK_NOT_AVAILABLE:
                        raise WriteLockTimeout() from error
                    if state in RETRYABLE:
                        raise StoreContention(str(state)) from error
                    raise

    @asynccontextmanager
    async def _open(self, *, write: bool) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            # The first connection use begins the transaction; the option tells
            # the SQLite begin hook which kind of BEGIN to emit.
            await session.connection(execution_options={_WRITE: write})
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
