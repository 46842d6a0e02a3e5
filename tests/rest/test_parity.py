"""The same scenarios over gRPC and over HTTP give the same answers: the shim adds
nothing and loses nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx
import pytest

from mailpool.v1 import conversation_service_pb2 as conv_pb
from mailpool.v1 import conversation_service_pb2_grpc as conv_grpc
from mailpool.v1 import event_service_pb2 as event_pb
from mailpool.v1 import event_service_pb2_grpc as event_grpc
from mailpool_server.app import App
from mailpool_server.rest import render
from mailpool_server.rest.status import HTTP_STATUS
from tests.rest.golden import normalize
from tests.sending import request as send_request
from tests.support import Tenant, make_tenant, rich_error

GrpcCall = Callable[[grpc.aio.Channel, Tenant], Awaitable[Any]]


def _auth(tenant: Tenant, key: str | None) -> dict[str, str]:
    return {} if key is None else {"Authorization": f"Bearer {key}"}


ERROR_CASES: list[tuple[str, str | None, dict[str, Any], str, str]] = [
    # (case, key override, send fields, HTTP path suffix, reason)
    ("missing key", None, {"to": "a@example.com"}, "", "API_KEY_MISSING"),
    ("malformed key", "pk_nope", {"to": "a@example.com"}, "", "API_KEY_MALFORMED"),
    ("unknown key", "sk_live_" + "0" * 40, {"to": "a@example.com"}, "", "API_KEY_INVALID"),
    (
        "unknown identity",
        "",
        {"identity": "nobody@mailpool.local", "to": "a@example.com"},
        "",
        "IDENTITY_NOT_FOUND",
    ),
    (
        "exclusive fields",
        "",
        {"conv_id": "conv_ab", "to": "a@example.com"},
        "",
        "MUTUALLY_EXCLUSIVE_FIELDS",
    ),
    (
        "bad idempotency key",
        "",
        {"to": "a@example.com", "idempotency_key": "a b"},
        "",
        "IDEMPOTENCY_KEY_MALFORMED",
    ),
    ("no body", "", {"to": "a@example.com", "text": ""}, "", "INVALID_ARGUMENT"),
]


def _json_of(fields: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, str]]:
    names = {
        "conv_id": "convId",
        "in_reply_to": "inReplyTo",
        "no_reply_event_after": "noReplyEventAfter",
    }
    body: dict[str, Any] = {}
    headers: dict[str, str] = {}
    handle = ""
    for key, value in fields.items():
        if key == "identity":
            handle = value
        elif key == "idempotency_key":
            headers["Idempotency-Key"] = value
        else:
            body[names.get(key, key)] = value
    return handle, body, headers


@pytest.mark.parametrize(
    ("case", "key", "fields", "suffix", "reason"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
async def test_send_errors_match(
    channel: grpc.aio.Channel,
    http: httpx.AsyncClient,
    tenant: Tenant,
    case: str,
    key: str | None,
    fields: dict[str, Any],
    suffix: str,
    reason: str,
) -> None:
    use_key = tenant.key if key == "" else key
    message = send_request(tenant, **fields)
    from mailpool.v1 import send_service_pb2_grpc

    metadata = () if use_key is None else (("authorization", f"Bearer {use_key}"),)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send_service_pb2_grpc.SendServiceStub(channel).Send(message, metadata=metadata)
    error = rich_error(caught.value)
    assert error.reason == reason

    handle, body, headers = _json_of(fields)
    if "subject" not in body and "convId" not in body:
        body["subject"] = message.subject
    if "text" not in body:
        body["text"] = message.text
    response = await http.post(
        f"/v1/identities/{handle or tenant.handle}/send",
        json=body,
        headers={**headers, **_auth(tenant, use_key)},
    )
    assert response.status_code == HTTP_STATUS[error.code]
    assert response.json()["error"] == error.message
    assert response.json().get("details", {}) == error.metadata


async def test_send_results_match(
    app: App, channel: grpc.aio.Channel, http: httpx.AsyncClient
) -> None:
    a = await make_tenant(app, "a", "a@mailpool.local")
    b = await make_tenant(app, "b", "b@mailpool.local")
    from mailpool.v1 import send_service_pb2_grpc

    to = ["x@example.com", "bad", "y@example.com"]
    via_grpc = await send_service_pb2_grpc.SendServiceStub(channel).Send(
        send_request(a, to=to, labels=["l"]), metadata=a.metadata
    )
    via_http = await http.post(
        f"/v1/identities/{b.handle}/send",
        headers={"Authorization": f"Bearer {b.key}"},
        json={"to": to, "subject": "Hello", "text": "Hi there", "labels": ["l"]},
    )
    expected = normalize(render.send_response(via_grpc))
    expected["identity"] = b.handle
    got = normalize(via_http.json())
    for result in (*expected["results"], *got["results"]):
        if "account" in result:
            result["account"]["email"] = result["account"]["email"].split(".", 1)[1]
    assert got == expected


async def test_reads_match(
    channel: grpc.aio.Channel, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    from mailpool.v1 import send_service_pb2_grpc

    sent = await send_service_pb2_grpc.SendServiceStub(channel).Send(
        send_request(tenant, to=["p@example.com", "q@example.com"], no_reply_event_after="1h"),
        metadata=tenant.metadata,
    )
    conv_id = sent.results[0].conv_id
    auth = {"Authorization": f"Bearer {tenant.key}"}
    conversations = conv_grpc.ConversationServiceStub(channel)
    events = event_grpc.EventServiceStub(channel)
    pairs = [
        (
            render.conversation_list(
                await conversations.ListConversations(
                    conv_pb.ListConversationsRequest(identity=tenant.handle),
                    metadata=tenant.metadata,
                )
            ),
            f"/v1/identities/{tenant.handle}/conversations",
        ),
        (
            render.conversation_detail(
                await conversations.GetConversation(
                    conv_pb.GetConversationRequest(identity=tenant.handle, conv_id=conv_id),
                    metadata=tenant.metadata,
                )
            ),
            f"/v1/identities/{tenant.handle}/conversations/{conv_id}",
        ),
        (
            render.event_list(
                await events.ListEvents(
                    event_pb.ListEventsRequest(identity=tenant.handle, since=1),
                    metadata=tenant.metadata,
                )
            ),
            f"/v1/identities/{tenant.handle}/events?since=1",
        ),
    ]
    for expected, path in pairs:
        assert (await http.get(path, headers=auth)).json() == expected


async def test_body_limits(http: httpx.AsyncClient, tenant: Tenant) -> None:
    auth = {"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"}
    path = f"/v1/identities/{tenant.handle}/send"
    big = b'{"text": "' + b"x" * (1024 * 1024) + b'"}'
    response = await http.post(path, content=big, headers=auth)
    assert (response.status_code, response.json()) == (
        413,
        {"error": "request body is larger than 1 MiB"},
    )

    async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
        for _ in range(20):
            yield b" " * 65536

    response = await http.post(path, content=chunks(), headers=auth)
    assert response.status_code == 413
    fits = await http.post(
        path, headers=auth, json={"to": "a@example.com", "subject": "s", "text": "x" * 900_000}
    )
    assert fits.status_code == 200
