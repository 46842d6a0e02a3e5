"""`mailpool shim`: the HTTP shim as its own process in front of a gRPC server."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import httpx

from mailpool_server.app import App
from tests.support import Tenant


async def test_the_shim_alone_serves_the_contract(app: App, tenant: Tenant) -> None:
    assert app.grpc is not None
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mailpool_server",
        "shim",
        "--grpc-target",
        f"127.0.0.1:{app.grpc.port}",
        "--http-port",
        "0",
        env={**os.environ, "MAILPOOL_LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        line = (await process.stdout.readline()).decode()
        match = re.match(
            r"mailpool: HTTP listening on 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:\d+", line
        )
        assert match, line
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{match.group(1)}") as http:
            response = await http.post(
                f"/v1/identities/{tenant.handle}/send",
                headers={"Authorization": f"Bearer {tenant.key}"},
                json={"to": "bob@example.com", "subject": "Hi", "text": "From afar"},
            )
            assert (response.status_code, response.json()["accepted"]) == (200, 1)
            missing = await http.get(f"/v1/identities/{tenant.handle}/events")
            assert (missing.status_code, missing.json()) == (401, {"error": "missing api key"})
    finally:
        process.terminate()
        assert await process.wait() == 0
