"""The server as tools see it: health checking and reflection, no key needed."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mailpool_server.app import App


async def test_health_answers_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "mailpool.v1.IdentityService"):
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_and_describes_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask(
        request: reflection_pb2.ServerReflectionRequest,
    ) -> reflection_pb2.ServerReflectionResponse:
        call = stub.ServerReflectionInfo(iter([request]))
        async for response in call:
            return response
        raise AssertionError("no reflection answer")

    listed = await ask(reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}
    assert {"mailpool.v1.IdentityService", "grpc.health.v1.Health"} <= names
    described = await ask(
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="mailpool.v1.IdentityService")
    )
    assert described.file_descriptor_response.file_descriptor_proto


async def test_stop_sets_not_serving_and_closes(app: App) -> None:
    assert app.grpc is not None
    port = app.grpc.port
    await app.stop()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as chan:
        stub = health_pb2_grpc.HealthStub(chan)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
