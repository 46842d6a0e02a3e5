"""The shim on a real port (uvicorn) in front of the real gRPC server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mailpool_server.app import App
from mailpool_server.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.http_port = 0
    return settings


@pytest.fixture
async def http(app: App) -> AsyncIterator[httpx.AsyncClient]:
    assert app.http is not None
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{app.http.port}", timeout=30
    ) as client:
        yield client
