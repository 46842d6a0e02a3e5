"""Fixtures for the client library's tests: a MailpoolClient on the in-process server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from mailpool_client import DEFAULT_RECONNECT, DEFAULT_RETRY, MailpoolClient, RetryPolicy
from mailpool_server.app import App
from mailpool_server.config import Settings
from tests.support import Tenant

# Short pauses so that retries and reconnects do not slow the tests down; the shapes
# (exponential, full jitter, bounded) are the defaults'.
FAST_RETRY = dataclasses.replace(DEFAULT_RETRY, initial_backoff=0.01, max_backoff=0.1)
FAST_RECONNECT = dataclasses.replace(DEFAULT_RECONNECT, initial_backoff=0.01, max_backoff=0.2)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.heartbeat_s = 0.2  # so that a test sees heartbeats without waiting 15 s
    return settings


def grpc_target(app: App) -> str:
    assert app.grpc is not None
    return f"127.0.0.1:{app.grpc.port}"


def make_client(
    target: str,
    key: str,
    *,
    retry: RetryPolicy = FAST_RETRY,
    reconnect: RetryPolicy = FAST_RECONNECT,
    stream_idle_timeout: float | None = 60.0,
) -> MailpoolClient:
    return MailpoolClient(
        target,
        key,
        retry=retry,
        reconnect=reconnect,
        stream_idle_timeout=stream_idle_timeout,
    )


@pytest.fixture
async def client(app: App, tenant: Tenant) -> AsyncIterator[MailpoolClient]:
    async with make_client(grpc_target(app), tenant.key) as mailpool:
        yield mailpool
