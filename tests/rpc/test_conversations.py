"""Replies, threading and ConversationService over a real channel."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import conversation_pb2
from mailpool.v1 import conversation_service_pb2 as pb
from mailpool.v1 import conversation_service_pb2_grpc as pb_grpc
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, now_ms
from tests.sending import send
from tests.support import Tenant, make_tenant, rich_error


def stub(channel: grpc.aio.Channel) -> pb_grpc.ConversationServiceAsyncStub:
    return pb_grpc.ConversationServiceStub(channel)


async def get(
    channel: grpc.aio.Channel, tenant: Tenant, conv_id: str
) -> pb.GetConversationResponse:
    return await stub(channel).GetConversation(
        pb.GetConversationRequest(identity=tenant.handle, conv_id=conv_id), metadata=tenant.metadata
    )


async def test_reply_threads_on_the_conversation(
    channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    first = (
        await send(channel, tenant, to="bob@example.com", subject="Re: Pricing", labels=["lead"])
    ).results[0]
    clock.advance(minutes=5)
    reply = (await send(channel, tenant, conv_id=first.conv_id, text="Following up")).results[0]
    clock.advance(minutes=5)
    third = (await send(channel, tenant, conv_id=first.conv_id, html="<p>Again</p>")).results[0]
    assert reply.conv_id == third.conv_id == first.conv_id
    assert reply.account.id == third.account.id == first.account.id
    assert reply.to == "bob@example.com"

    detail = await get(channel, tenant, first.conv_id)
    messages = [item.message for item in detail.timeline if item.HasField("message")]
    assert [m.subject for m in messages] == ["Re: Pricing", "Re: Pricing", "Re: Pricing"]
    assert messages[1].in_reply_to == messages[0].message_id_header
    assert list(messages[2].references) == [
        messages[0].message_id_header,
        messages[1].message_id_header,
    ]
    assert all(m.message_id_header.endswith(m.from_address.split("@")[1] + ">") for m in messages)
    assert messages[2].snippet == "Again"
    assert detail.conversation.message_count == 3
    assert list(detail.conversation.labels) == ["lead"]
    assert [item.WhichOneof("item") for item in detail.timeline] == [
        "message",
        "label_added",
        "message",
        "message",
    ]


async def test_reply_subject_gets_re_once(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    conv = (await send(channel, tenant, to="bob@example.com", subject="Pricing")).results[0]
    await send(channel, tenant, conv_id=conv.conv_id, text="1")
    await send(channel, tenant, conv_id=conv.conv_id, text="2")
    detail = await get(channel, tenant, conv.conv_id)
    subjects = [i.message.subject for i in detail.timeline if i.HasField("message")]
    assert subjects == ["Pricing", "Re: Pricing", "Re: Pricing"]


async def test_in_reply_to_threads_onto_outside_mail(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    result = (
        await send(
            channel,
            tenant,
            to="bob@example.com",
            in_reply_to="<abc@elsewhere.example>",
            references=["<root@elsewhere.example>"],
        )
    ).results[0]
    [item] = [i for i in (await get(channel, tenant, result.conv_id)).timeline]
    assert item.message.in_reply_to == "<abc@elsewhere.example>"
    assert list(item.message.references) == ["<root@elsewhere.example>", "<abc@elsewhere.example>"]


async def test_no_reply_timer_is_armed_and_rearmed(
    channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    conv = (await send(channel, tenant, to="bob@example.com", no_reply_event_after="30s")).results[
        0
    ]
    detail = await get(channel, tenant, conv.conv_id)
    assert detail.conversation.no_reply_time.ToMilliseconds() == now_ms(clock) + 60_000  # floor
    clock.advance(minutes=10)
    await send(channel, tenant, conv_id=conv.conv_id, text="bump")
    detail = await get(channel, tenant, conv.conv_id)
    assert detail.conversation.no_reply_time.ToMilliseconds() == now_ms(clock) + 60_000
    assert not detail.conversation.HasField("last_no_reply_time")


async def test_conversation_of_another_identity_is_not_found(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    other = await make_tenant(app, "globex", "hank.globex@mailpool.local")
    theirs = (await send(channel, other, to="bob@example.com")).results[0].conv_id
    for call in (
        send(channel, tenant, conv_id=theirs, text="hijack"),
        get(channel, tenant, theirs),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = rich_error(caught.value)
        assert (error.code, error.message, error.metadata) == (
            grpc.StatusCode.NOT_FOUND,
            "conversation not found",
            {"convId": theirs},
        )


async def test_malformed_conv_id_is_invalid(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get(channel, tenant, "conv_XYZ")
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message.startswith("convId")


async def list_all(
    channel: grpc.aio.Channel, tenant: Tenant, page_size: int, **filters: Any
) -> list[conversation_pb2.Conversation]:
    found: list[conversation_pb2.Conversation] = []
    token = ""
    while True:
        page = await stub(channel).ListConversations(
            pb.ListConversationsRequest(
                identity=tenant.handle, page_size=page_size, page_token=token, **filters
            ),
            metadata=tenant.metadata,
        )
        found += page.conversations
        token = page.next_page_token
        if not token:
            return found


async def test_paging_is_stable_when_times_are_shared(
    channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    ids = []
    for n in range(7):  # three share each instant
        if n % 3 == 0:
            clock.advance(seconds=1)
        ids.append((await send(channel, tenant, to=f"p{n}@example.com")).results[0].conv_id)
    listed = await list_all(channel, tenant, page_size=2)
    assert len(listed) == 7
    assert {c.id for c in listed} == set(ids)
    keys = [(c.last_event_time.ToMilliseconds(), c.id) for c in listed]
    assert keys == sorted(keys, reverse=True)


async def test_filters_are_anded(
    channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    start = now_ms(clock)
    await send(channel, tenant, to="ann@example.com")
    clock.advance(minutes=1)
    await send(channel, tenant, to="bea@mail.example.com")
    clock.advance(minutes=1)
    await send(channel, tenant, to="cid@notexample.com")

    async def names(**filters: Any) -> list[str]:
        return [c.correspondent for c in await list_all(channel, tenant, 50, **filters)]

    assert await names(correspondent_domain="example.com") == [
        "bea@mail.example.com",
        "ann@example.com",
    ]
    assert await names(correspondent="ANN@example.com") == ["ann@example.com"]
    since = Timestamp()
    since.FromMilliseconds(start + 60_000)
    assert await names(since=since, correspondent_domain="example.com") == ["bea@mail.example.com"]
    assert await names(archived=True) == []
    assert len(await names(archived=False)) == 3


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"page_size": 201}, "limit"),
        ({"page_token": "%%%"}, "cursor"),
        ({"correspondent_domain": "@"}, "withDomain"),
    ],
)
async def test_list_validation_names_the_field(
    channel: grpc.aio.Channel, tenant: Tenant, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub(channel).ListConversations(
            pb.ListConversationsRequest(identity=tenant.handle, **fields),
            metadata=tenant.metadata,
        )
    assert rich_error(caught.value).message.startswith(field)
