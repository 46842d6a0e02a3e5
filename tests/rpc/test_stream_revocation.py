"""A revoked key ends the streams it opened within a heartbeat period, as it ends
unary calls at once."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from mailpool.v1 import event_service_pb2 as pb
from mailpool.v1 import event_service_pb2_grpc as pb_grpc
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.keys import display_prefix
from mailpool_server.service.timer import ManualTimer
from tests.support import Tenant, rich_error

HEARTBEAT_S = 15.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.heartbeat_s = HEARTBEAT_S
    return settings


@pytest.fixture
def timer() -> ManualTimer:
    return ManualTimer()


async def next_heartbeat(call: Any, timer: ManualTimer) -> object:
    """Let one heartbeat period pass on an idle stream and read what it sends."""
    await timer.until_waiting()
    await timer.advance(HEARTBEAT_S)
    return await call.read()


async def test_revoking_a_key_ends_its_open_streams(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, timer: ManualTimer
) -> None:
    stub = pb_grpc.EventServiceStub(channel)
    call = stub.StreamEvents(
        pb.StreamEventsRequest(identity=tenant.handle), metadata=tenant.metadata
    )
    first = await call.read()
    assert isinstance(first, pb.StreamEventsResponse) and first.HasField("caught_up")
    for _ in range(3):  # heartbeats keep coming while the key is good
        beat = await next_heartbeat(call, timer)
        assert isinstance(beat, pb.StreamEventsResponse) and beat.HasField("heartbeat")

    await app.admin.revoke_key(tenant.org, display_prefix(tenant.key))
    # The next heartbeat is refused: the stream checks its key before each write once
    # half a heartbeat period has passed since the last check.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await next_heartbeat(call, timer)
    error = rich_error(caught.value)
    assert (error.code, error.message) == (grpc.StatusCode.UNAUTHENTICATED, "invalid api key")
