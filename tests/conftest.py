"""Shared fixtures: the real store (a SQLite file, and PostgreSQL when
MAILPOOL_TEST_POSTGRES names a server), the real gRPC server on a free port, a fake clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.clock import UTC, FakeClock
from mailpool_server.service.timer import Timer
from mailpool_server.store.engine import CONNECTIONS_LEFT_OUT
from mailpool_server.store.pg_notify import asyncpg_dsn
from tests.fuzz_counts import SENT
from tests.support import Tenant, make_tenant

POSTGRES = os.environ.get("MAILPOOL_TEST_POSTGRES")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES else [])]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def postgres_admin_sync(query: str) -> None:
    """postgres_admin for synchronous fixtures (module-scoped server processes)."""
    asyncio.run(postgres_admin(query))


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist each worker counts its own inputs and hands them to the
    # controller, which adds them up (pytest_testnodedown).
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fuzz_inputs"] = dict(SENT)


def pytest_testnodedown(node: Any, error: object) -> None:
    SENT.update(getattr(node, "workeroutput", {}).get("fuzz_inputs", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for kind, count in sorted(SENT.items()):
        terminalreporter.write_line(f"property-based inputs sent ({kind}): {count}")


async def postgres_admin(query: str) -> None:
    assert POSTGRES is not None
    connection = await asyncpg.connect(asyncpg_dsn(POSTGRES))
    try:
        await connection.execute(query)
    finally:
        await connection.close()


async def _migrate(url: str, folder: Path) -> None:
    application = await App.open(Settings(database_url=url, data_dir=folder))
    await application.stop()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the schema at head, made once per test process: each test
    copies it rather than run every migration again (about 65 ms a test)."""
    folder = tmp_path_factory.mktemp("template")
    asyncio.run(_migrate(f"sqlite:///{folder / 'template.db'}", folder))
    return folder / "template.db"


@pytest.fixture(scope="session")
def migrated_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """The name of a PostgreSQL database with the schema at head, made once per test
    process, that test databases are created from (CREATE DATABASE … TEMPLATE)."""
    if POSTGRES is None:
        yield None
        return
    name = "tmpl_" + secrets.token_hex(6)
    postgres_admin_sync(f'CREATE DATABASE "{name}"')
    try:
        url = POSTGRES.rsplit("/", 1)[0] + "/" + name
        asyncio.run(_migrate(url, tmp_path_factory.mktemp("pg-template")))
        yield name
    finally:
        postgres_admin_sync(f'DROP DATABASE "{name}" WITH (FORCE)')


@asynccontextmanager
async def _postgres_database(template: str | None = None) -> AsyncIterator[str]:
    """A new PostgreSQL database (a copy of `template` if given), dropped afterwards."""
    assert POSTGRES is not None
    name = "t_" + secrets.token_hex(6)
    copy_of = f' TEMPLATE "{template}"' if template else ""
    await postgres_admin(f'CREATE DATABASE "{name}"{copy_of}')
    try:
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    finally:
        await postgres_admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(
    backend: str,
    tmp_path: Path,
    migrated_sqlite: Path,
    migrated_postgres: str | None,
) -> AsyncIterator[str]:
    """A fresh database of the backend with the schema at head and no rows: a SQLite
    file, or a new PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        shutil.copyfile(migrated_sqlite, tmp_path / "mailpool.db")
        yield f"sqlite:///{tmp_path / 'mailpool.db'}"
        return
    async with _postgres_database(migrated_postgres) as url:
        yield url


@pytest.fixture
async def empty_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database with no schema at all, for tests of the migrations themselves."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    async with _postgres_database() as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 4, 27, 8, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        http_port=None,  # the shim's tests turn it on
        run_dispatcher=False,  # delivery tests drive the dispatcher and timers themselves
        run_webhook_relay=False,  # the relay's tests turn it on
        inbound_port=None,
        lmtp_port=None,
        data_dir=tmp_path,
        shutdown_grace_s=2.0,
    )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def no_connection_left_checked_out() -> Iterator[None]:
    """Fails the test whose PostgreSQL database closed with a connection still checked
    out (store/engine.py says so in its log). Otherwise the leak surfaces as a warning
    in whichever later test the garbage collector happens to run in."""
    records, store_log = _Records(), logging.getLogger("mailpool.store")
    store_log.addHandler(records)
    try:
        yield
    finally:
        store_log.removeHandler(records)
    assert CONNECTIONS_LEFT_OUT not in records.messages


@pytest.fixture
def timer() -> Timer | None:
    """What measures waits: None is the event loop's clock. Modules that test
    heartbeats, long-poll holds or stalls override this with a ManualTimer and move it."""
    return None


@pytest.fixture
async def app(settings: Settings, clock: FakeClock, timer: Timer | None) -> AsyncIterator[App]:
    application = await App.open(settings, clock, timer)
    await application.start()
    try:
        yield application
    finally:
        await application.stop()


@pytest.fixture
async def channel(app: App) -> AsyncIterator[grpc.aio.Channel]:
    assert app.grpc is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc.port}") as chan:
        yield chan


@pytest.fixture
async def tenant(app: App) -> Tenant:
    return await make_tenant(app, "acme", "alice.acme@mailpool.local")
