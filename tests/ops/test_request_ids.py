"""One request id follows a call: returned to the caller (gRPC trailers, HTTP header),
taken from the caller when usable, forwarded by the shim, and logged by the Send and
by the dispatcher that delivers what the Send queued."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from mailpool.v1 import send_service_pb2_grpc as send_grpc
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.logs import JsonFormatter
from tests.delivery.helpers import deliver_all
from tests.sending import request
from tests.support import Tenant


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.http_port = 0
    settings.cold_gap_ms = 0  # both sends of a test are due at once
    return settings


@pytest.fixture
async def http(app: App) -> AsyncIterator[httpx.AsyncClient]:
    assert app.http is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http.port}", timeout=30) as c:
        yield c


@pytest.fixture
def json_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog whose text is the server's JSON lines (the request id is read when a
    record is emitted, in the context of the call that logged it)."""
    caplog.set_level(logging.DEBUG, logger="mailpool")
    caplog.handler.setFormatter(JsonFormatter())
    return caplog


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]


async def grpc_send(
    channel: grpc.aio.Channel, tenant: Tenant, rid: str | None, **fields: Any
) -> str:
    stub = send_grpc.SendServiceStub(channel)
    metadata = list(tenant.metadata)
    if rid is not None:
        metadata.append(("x-request-id", rid))
    call = stub.Send(request(tenant, to="morgan@northwind.example", **fields), metadata=metadata)
    await call
    trailing = {k: v for k, v in (await call.trailing_metadata()) or ()}
    return str(trailing["x-request-id"])


async def test_grpc_returns_a_new_id_or_the_callers(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    fresh = await grpc_send(channel, tenant, None)
    assert fresh.startswith("req_")
    assert await grpc_send(channel, tenant, "trace-42") == "trace-42"
    for unusable in ("x" * 129, "has space"):
        replaced = await grpc_send(channel, tenant, unusable)
        assert replaced.startswith("req_") and replaced != unusable


async def test_grpc_errors_carry_the_id_too(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    stub = send_grpc.SendServiceStub(channel)
    call = stub.Send(
        request(tenant, to="morgan@northwind.example"),
        metadata=(("authorization", "Bearer sk_live_nope"), ("x-request-id", "trace-err")),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    trailing = dict(caught.value.trailing_metadata() or ())
    assert trailing["x-request-id"] == "trace-err"
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_http_returns_the_id_and_forwards_it(
    http: httpx.AsyncClient, tenant: Tenant, json_logs: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {tenant.key}"}
    response = await http.get(f"/v1/identities/{tenant.handle}/conversations", headers=headers)
    assert response.headers["x-request-id"].startswith("req_")
    response = await http.post(
        f"/v1/identities/{tenant.handle}/send",
        headers={**headers, "X-Request-Id": "shim-trace-7"},
        json={"to": "morgan@northwind.example", "subject": "Hi", "text": "Hello"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "shim-trace-7"
    # The gRPC server logged the Send under the shim's id.
    sends = [x for x in lines(json_logs) if x.get("method") == "/mailpool.v1.SendService/Send"]
    assert sends and all(x["request_id"] == "shim-trace-7" for x in sends)
    # Errors the shim answers itself carry one too.
    missing = await http.get("/nowhere", headers={"X-Request-Id": "lost-1"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "lost-1"


async def test_the_dispatcher_logs_the_id_of_the_request_that_queued(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, json_logs: pytest.LogCaptureFixture
) -> None:
    await grpc_send(channel, tenant, "queued-by-me")
    await grpc_send(channel, tenant, None, idempotency_key="k2", subject="Another")
    assert await deliver_all(app) == 2
    deliveries = [x for x in lines(json_logs) if x["msg"] == "delivery"]
    assert len(deliveries) == 2
    ids = sorted(x["request_id"] for x in deliveries)
    assert "queued-by-me" in ids and all(x["outcome"] == "sent" for x in deliveries)
    assert any(i.startswith("req_") for i in ids)
    send_logs = [x for x in lines(json_logs) if x.get("method", "").endswith("/Send")]
    assert any(x["request_id"] == "queued-by-me" for x in send_logs)
