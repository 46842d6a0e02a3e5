"""A SQLite file database and its store, for the tests of SQLite's own machinery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailpool_server.store.engine import open_database
from mailpool_server.store.sql_store import SqlStore
from mailpool_server.store.sqlite_db import SqliteDatabase


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
async def database(db_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = await open_database(f"sqlite:///{db_path}")
    assert isinstance(database, SqliteDatabase)
    yield database
    await database.dispose()


@pytest.fixture
def store(database: SqliteDatabase) -> SqlStore:
    return SqlStore(database)
