"""Archive, unarchive and labels on ConversationService over a real channel."""

from __future__ import annotations

import grpc
import pytest

from mailpool.v1 import conversation_service_pb2 as pb
from mailpool.v1 import event_service_pb2, event_service_pb2_grpc
from mailpool_server.app import App
from mailpool_server.rest.render import DetailResponse
from mailpool_server.service.clock import FakeClock, now_ms
from tests.rpc.test_conversations import get, list_all, stub
from tests.sending import send
from tests.support import Tenant, make_tenant, rich_error


def kinds(response: DetailResponse) -> list[str]:
    return [str(item.WhichOneof("item")) for item in response.timeline]


async def event_count(channel: grpc.aio.Channel, tenant: Tenant) -> int:
    events = await event_service_pb2_grpc.EventServiceStub(channel).ListEvents(
        event_service_pb2.ListEventsRequest(identity=tenant.handle), metadata=tenant.metadata
    )
    return len(events.events)


async def test_archive_and_unarchive(
    channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    conv = (await send(channel, tenant, to="bob@example.com")).results[0].conv_id
    events = await event_count(channel, tenant)
    clock.advance(minutes=3)
    archived = await stub(channel).ArchiveConversation(
        pb.ArchiveConversationRequest(identity=tenant.handle, conv_id=conv),
        metadata=tenant.metadata,
    )
    assert archived.conversation.archived
    assert archived.identity == tenant.handle
    assert kinds(archived) == ["message", "archived"]
    assert archived.timeline[-1].time.ToMilliseconds() == now_ms(clock)
    assert archived.conversation.last_event_time.ToMilliseconds() == now_ms(clock)
    assert [c.id for c in await list_all(channel, tenant, 50, archived=True)] == [conv]

    clock.advance(minutes=1)
    again = await stub(channel).ArchiveConversation(
        pb.ArchiveConversationRequest(identity=tenant.handle, conv_id=conv),
        metadata=tenant.metadata,
    )
    assert again == archived  # a no-op: no item, same answer

    unarchived = await stub(channel).UnarchiveConversation(
        pb.UnarchiveConversationRequest(identity=tenant.handle, conv_id=conv),
        metadata=tenant.metadata,
    )
    assert not unarchived.conversation.archived
    assert kinds(unarchived) == ["message", "archived", "unarchived"]
    noop = await stub(channel).UnarchiveConversation(
        pb.UnarchiveConversationRequest(identity=tenant.handle, conv_id=conv),
        metadata=tenant.metadata,
    )
    assert noop == unarchived
    assert await list_all(channel, tenant, 50, archived=True) == []
    assert await get(channel, tenant, conv) == pb.GetConversationResponse(
        identity=unarchived.identity,
        conversation=unarchived.conversation,
        timeline=unarchived.timeline,
    )
    assert await event_count(channel, tenant) == events  # no events for these


async def test_add_and_remove_labels(
    channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    conv = (await send(channel, tenant, to="bob@example.com", labels=["lead"])).results[0].conv_id
    clock.advance(minutes=1)
    added = await stub(channel).AddLabels(
        pb.AddLabelsRequest(
            identity=tenant.handle, conv_id=conv, labels=["hot", "lead", "vip", "hot"]
        ),
        metadata=tenant.metadata,
    )
    assert list(added.conversation.labels) == ["lead", "hot", "vip"]
    assert kinds(added) == ["message", "label_added", "label_added", "label_added"]
    assert [i.label_added.label for i in added.timeline[1:]] == ["lead", "hot", "vip"]

    same = await stub(channel).AddLabels(
        pb.AddLabelsRequest(identity=tenant.handle, conv_id=conv, labels=["vip"]),
        metadata=tenant.metadata,
    )
    assert same == added

    removed = await stub(channel).RemoveLabels(
        pb.RemoveLabelsRequest(identity=tenant.handle, conv_id=conv, labels=["lead", "nope"]),
        metadata=tenant.metadata,
    )
    assert list(removed.conversation.labels) == ["hot", "vip"]
    assert kinds(removed)[-1] == "label_removed"
    assert removed.timeline[-1].label_removed.label == "lead"
    assert len(removed.timeline) == len(added.timeline) + 1
    noop = await stub(channel).RemoveLabels(
        pb.RemoveLabelsRequest(identity=tenant.handle, conv_id=conv, labels=["lead"]),
        metadata=tenant.metadata,
    )
    assert noop == removed


@pytest.mark.parametrize("labels", [[], [f"l{n}" for n in range(21)], [""], ["a\nb"], ["x" * 65]])
async def test_bad_labels_are_invalid(
    channel: grpc.aio.Channel, tenant: Tenant, labels: list[str]
) -> None:
    conv = (await send(channel, tenant, to="bob@example.com")).results[0].conv_id
    for call in (
        stub(channel).AddLabels(
            pb.AddLabelsRequest(identity=tenant.handle, conv_id=conv, labels=labels),
            metadata=tenant.metadata,
        ),
        stub(channel).RemoveLabels(
            pb.RemoveLabelsRequest(identity=tenant.handle, conv_id=conv, labels=labels),
            metadata=tenant.metadata,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = rich_error(caught.value)
        assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
        assert error.message.startswith("labels: ")


async def test_changes_to_another_identitys_conversation_are_not_found(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    other = await make_tenant(app, "globex", "hank.globex@mailpool.local")
    theirs = (await send(channel, other, to="bob@example.com")).results[0].conv_id
    s = stub(channel)
    for call in (
        s.ArchiveConversation(
            pb.ArchiveConversationRequest(identity=tenant.handle, conv_id=theirs),
            metadata=tenant.metadata,
        ),
        s.UnarchiveConversation(
            pb.UnarchiveConversationRequest(identity=tenant.handle, conv_id=theirs),
            metadata=tenant.metadata,
        ),
        s.AddLabels(
            pb.AddLabelsRequest(identity=tenant.handle, conv_id=theirs, labels=["x"]),
            metadata=tenant.metadata,
        ),
        s.RemoveLabels(
            pb.RemoveLabelsRequest(identity=tenant.handle, conv_id=theirs, labels=["x"]),
            metadata=tenant.metadata,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = rich_error(caught.value)
        assert (error.code, error.reason, error.metadata) == (
            grpc.StatusCode.NOT_FOUND,
            "CONVERSATION_NOT_FOUND",
            {"convId": theirs},
        )
    detail = await get(channel, other, theirs)
    assert not detail.conversation.archived
    assert [i.WhichOneof("item") for i in detail.timeline] == ["message"]
