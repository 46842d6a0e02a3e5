"""SendService.CancelSend over a real channel."""

from __future__ import annotations

import grpc
import pytest

from mailpool.v1 import (
    conversation_pb2,
    conversation_service_pb2,
    conversation_service_pb2_grpc,
    event_service_pb2,
    event_service_pb2_grpc,
)
from mailpool.v1 import send_service_pb2 as pb
from mailpool.v1 import send_service_pb2_grpc as pb_grpc
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, now_ms
from mailpool_server.service.models import PendingStatus
from tests.sending import send
from tests.support import Tenant, make_tenant, rich_error


async def cancel(
    channel: grpc.aio.Channel, tenant: Tenant, pending_id: str
) -> pb.CancelSendResponse:
    return await pb_grpc.SendServiceStub(channel).CancelSend(
        pb.CancelSendRequest(identity=tenant.handle, pending_id=pending_id),
        metadata=tenant.metadata,
    )


async def cancelled_events(channel: grpc.aio.Channel, tenant: Tenant) -> list[tuple[str, str]]:
    events = await event_service_pb2_grpc.EventServiceStub(channel).ListEvents(
        event_service_pb2.ListEventsRequest(identity=tenant.handle, types=["email.cancelled"]),
        metadata=tenant.metadata,
    )
    return [(e.email_cancelled.pending_id, str(e.email_cancelled.reason)) for e in events.events]


async def test_cancel_a_queued_send(app: App, channel: grpc.aio.Channel, tenant: Tenant) -> None:
    result = (await send(channel, tenant, to="bob@example.com")).results[0]
    answer = await cancel(channel, tenant, result.pending_id)
    assert answer == pb.CancelSendResponse(
        identity=tenant.handle,
        pending_id=result.pending_id,
        conv_id=result.conv_id,
        recipient="bob@example.com",
    )
    async with app.store.read() as tx:
        assert await tx.pending_status(result.pending_id) is PendingStatus.CANCELLED
    events = await cancelled_events(channel, tenant)
    assert len(events) == 1 and events[0][0] == result.pending_id
    assert await cancel(channel, tenant, result.pending_id) == answer  # a no-op
    assert await cancelled_events(channel, tenant) == events


async def test_a_claimed_send_cannot_be_cancelled(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    result = (await send(channel, tenant, to="bob@example.com")).results[0]
    clock.advance(days=1)
    async with app.store.write() as tx:
        claimed = await tx.claim_due(now_ms(clock), now_ms(clock) + 60_000, 10)
    assert [m.pending_id for m in claimed] == [result.pending_id]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cancel(channel, tenant, result.pending_id)
    error = rich_error(caught.value)
    assert (error.code, error.reason, error.metadata) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SEND_ALREADY_DISPATCHED",
        {"pendingId": result.pending_id, "status": "sending"},
    )
    assert await cancelled_events(channel, tenant) == []


async def test_another_identitys_send_is_not_found(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    other = await make_tenant(app, "globex", "hank.globex@mailpool.local")
    theirs = (await send(channel, other, to="bob@example.com")).results[0].pending_id
    for pending_id in (theirs, "psn_0123456789abcdef", "nonsense"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await cancel(channel, tenant, pending_id)
        error = rich_error(caught.value)
        assert (error.code, error.reason, error.metadata) == (
            grpc.StatusCode.NOT_FOUND,
            "PENDING_SEND_NOT_FOUND",
            {"pendingId": pending_id},
        )
    async with app.store.read() as tx:
        assert await tx.pending_status(theirs) is PendingStatus.QUEUED


async def test_the_conversation_shows_each_send_and_whether_it_can_be_cancelled(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    """GetConversation gives an outbound message's pending id and state: what a client
    needs to offer CancelSend, without reading the event log."""
    result = (await send(channel, tenant, to="bob@example.com")).results[0]
    conversations = conversation_service_pb2_grpc.ConversationServiceStub(channel)

    async def delivery() -> conversation_pb2.Delivery:
        found = await conversations.GetConversation(
            conversation_service_pb2.GetConversationRequest(
                identity=tenant.handle, conv_id=result.conv_id
            ),
            metadata=tenant.metadata,
        )
        [item] = [i for i in found.timeline if i.HasField("message")]
        return item.message.delivery

    queued = conversation_pb2.Delivery(
        pending_id=result.pending_id, state=conversation_pb2.SEND_STATE_QUEUED
    )
    assert await delivery() == queued
    await cancel(channel, tenant, result.pending_id)
    assert await delivery() == conversation_pb2.Delivery(
        pending_id=result.pending_id, state=conversation_pb2.SEND_STATE_CANCELLED
    )
