"""The store contract runs every test on every implementation of `service.ports.Store`:
the SQL store on SQLite, on PostgreSQL (when MAILPOOL_TEST_POSTGRES is set) and the
in-memory double the use-case tests run on.

Each test starts from empty tables: a SQLite file copied from one migrated once per
session, or one PostgreSQL database migrated once per session and emptied before each
test (creating a database per test cost ten times as much)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from mailpool_server.service.ports import Store
from mailpool_server.store.engine import (
    Database,
    PostgresDatabase,
    is_sqlite,
    make_engine,
    open_database,
)
from mailpool_server.store.sql_store import SqlStore
from mailpool_server.store.sqlite_db import SqliteDatabase
from mailpool_server.store.tables import Base
from tests.conftest import BACKENDS, POSTGRES, postgres_admin
from tests.memory_store import MemoryStore
from tests.store.contract.seed import World, seed_world

IMPLEMENTATIONS = [*BACKENDS, "memory"]


@pytest.fixture(params=IMPLEMENTATIONS)
def backend(request: pytest.FixtureRequest) -> str:
    """Overrides the root `backend`: the contract also runs on the in-memory store."""
    return str(request.param)


async def _migrate(url: str) -> None:
    database = await open_database(url)
    await database.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "template.db"
    asyncio.run(_migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    assert POSTGRES is not None
    name = "contract_" + secrets.token_hex(6)
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    url = POSTGRES.rsplit("/", 1)[0] + "/" + name
    try:
        asyncio.run(_migrate(url))
        yield url
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


# Children first. (DELETE: TRUNCATE makes new files for every table and index, and
# took twenty times as long on these nearly empty tables.)
_EMPTY_TABLES = [text(f'DELETE FROM "{t.name}"') for t in reversed(Base.metadata.sorted_tables)]


@pytest.fixture
def sql_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """The database the SQL store opens; None for the in-memory store. (A sync fixture:
    the session fixtures it may set up run their own event loops.)"""
    if backend == "memory":
        return None
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    path = tmp_path / "contract.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
async def store(sql_url: str | None) -> AsyncIterator[Store]:
    if sql_url is None:
        yield MemoryStore()
        return
    # The schema is migrated already (once per session): open the backend directly.
    database: Database
    if is_sqlite(sql_url):
        database = SqliteDatabase(sql_url, pool_size=4)
    else:
        database = PostgresDatabase(make_engine(sql_url, pool_size=4, max_overflow=4))
        async with database.engine.begin() as connection:
            for statement in _EMPTY_TABLES:
                await connection.execute(statement)
    try:
        yield SqlStore(database)
    finally:
        await database.dispose()


@pytest.fixture
async def world(store: Store) -> World:
    """An org with one identity and two mailboxes, committed."""
    return await seed_world(store)
