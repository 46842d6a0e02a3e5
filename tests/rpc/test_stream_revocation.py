"""A revoked key ends the streams it opened within a heartbeat period, as it ends
unary calls at once."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from mailpool.v1 import event_service_pb2 as pb
from mailpool.v1 import event_service_pb2_grpc as pb_grpc
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.keys import display_prefix
from tests.support import Tenant, rich_error

HEARTBEAT_S = 0.2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.heartbeat_s = HEARTBEAT_S
    return settings


async def test_revoking_a_key_ends_its_open_streams(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    stub = pb_grpc.EventServiceStub(channel)
    call = stub.StreamEvents(
        pb.StreamEventsRequest(identity=tenant.handle), metadata=tenant.metadata
    )
    first = await call.read()
    assert isinstance(first, pb.StreamEventsResponse) and first.HasField("caught_up")
    # Heartbeats keep coming while the key is good.
    for _ in range(3):
        beat = await call.read()
        assert isinstance(beat, pb.StreamEventsResponse) and beat.HasField("heartbeat")

    await app.admin.revoke_key(tenant.org, display_prefix(tenant.key))

    received_after: list[object] = []

    async def read_until_ended() -> None:
        while (message := await call.read()) is not grpc.aio.EOF:
            received_after.append(message)
        raise AssertionError("the stream ended without an error")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        # A bound on failure, not the measure: the count below is.
        await asyncio.wait_for(read_until_ended(), 50 * HEARTBEAT_S)
    beats_after = len(received_after)
    error = rich_error(caught.value)
    assert (error.code, error.message) == (grpc.StatusCode.UNAUTHENTICATED, "invalid api key")
    # The stream checks its key before each write once half a heartbeat period has passed,
    # so the first heartbeat due after the revocation is refused. One written just before
    # the revocation may still be on its way. Counting messages, not seconds, keeps this
    # independent of how loaded the machine is.
    assert beats_after <= 1
