"""Shared fixtures: a real SQLite file, the real gRPC server on a free port, a fake clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.clock import UTC, FakeClock
from tests.support import Tenant, make_tenant


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 4, 27, 8, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'mailpool.db'}",
        grpc_host="127.0.0.1",
        grpc_port=0,
        http_port=None,  # the shim's tests turn it on
        run_dispatcher=False,  # delivery tests drive the dispatcher and timers themselves
        inbound_port=None,
        lmtp_port=None,
        data_dir=tmp_path,
        shutdown_grace_s=2.0,
    )


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[App]:
    application = await App.open(settings, clock)
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
