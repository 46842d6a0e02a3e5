"""Helpers for tests that send over a real channel."""

from __future__ import annotations

from typing import Any

import grpc

from mailpool.v1 import send_service_pb2 as pb
from mailpool.v1 import send_service_pb2_grpc as pb_grpc
from tests.support import Tenant, rich_error


def request(tenant: Tenant, **fields: Any) -> pb.SendRequest:
    fields.setdefault("identity", tenant.handle)
    if "conv_id" not in fields:
        fields.setdefault("subject", "Hello")
    if "html" not in fields:
        fields.setdefault("text", "Hi there")
    if isinstance(fields.get("to"), str):
        fields["to"] = [fields["to"]]
    return pb.SendRequest(**fields)


async def send(channel: grpc.aio.Channel, tenant: Tenant, **fields: Any) -> pb.SendResponse:
    stub = pb_grpc.SendServiceStub(channel)
    return await stub.Send(request(tenant, **fields), metadata=tenant.metadata)


async def send_call(
    channel: grpc.aio.Channel, tenant: Tenant, **fields: Any
) -> tuple[pb.SendResponse, dict[str, str]]:
    """The response and the initial metadata (where idempotent-replayed appears)."""
    stub = pb_grpc.SendServiceStub(channel)
    call = stub.Send(request(tenant, **fields), metadata=tenant.metadata)
    response = await call
    return response, {k: v for k, v in (await call.initial_metadata()) or ()}  # type: ignore[misc]


async def rejected(channel: grpc.aio.Channel, tenant: Tenant, **fields: Any) -> pb.SendResponse:
    """Send expecting RESOURCE_EXHAUSTED; return the per-recipient result it carries."""
    try:
        await send(channel, tenant, **fields)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        detail = rich_error(error).detail(pb.SendResponse)
        assert detail is not None
        return detail
    raise AssertionError("send was accepted")
