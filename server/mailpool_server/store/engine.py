"""Engines, and units of work on PostgreSQL (asyncpg). SQLite's are in sqlite_db.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from mailpool_server.service.errors import StoreContention
from mailpool_server.service.ports import WriteLockTimeout
from mailpool_server.store.base import SessionPort
from mailpool_server.store.migrate import upgrade
from mailpool_server.store.sqlite_db import SqliteDatabase

LOCK_NOT_AVAILABLE = "55P03"
# deadlock_detected, serialization_failure: the transaction lost a race; nothing was
# written, and the same request may simply be sent again.
RETRYABLE = {"40P01", "40001"}


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """PostgreSQL's async engine (asyncpg). SQLite runs on its own engine in
    SqliteDatabase."""
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True
    )


class Database(Protocol):
    """Opens units of work. Each is one transaction: committed on a clean exit,
    rolled back on an exception."""

    dialect: str

    def session(
        self, *, write: bool, lock_timeout_s: float | None = None
    ) -> AbstractAsyncContextManager[SessionPort]: ...

    async def dispose(self) -> None: ...


class PostgresDatabase:
    """Units of work on PostgreSQL: one pooled connection and transaction each."""

    dialect = "postgresql"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(
        self, *, write: bool, lock_timeout_s: float | None = None
    ) -> AsyncIterator[SessionPort]:
        async with self._sessions() as session, session.begin():
            if write and lock_timeout_s is not None:
                # A wait on a row or key lock longer than this fails with
                # lock_not_available instead of hanging.
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

    async def dispose(self) -> None:
        await self.engine.dispose()


async def open_database(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> Database:
    """Bring the schema up to date, then open units of work on the URL's backend."""
    if is_sqlite(url):
        sqlite = SqliteDatabase(url, pool_size=pool_size)
        sqlite.migrate()
        return sqlite
    engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    await upgrade(engine)
    return PostgresDatabase(engine)
