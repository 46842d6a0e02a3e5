"""What a hostile or careless client sends gets INVALID_ARGUMENT / NOT_FOUND /
UNAUTHENTICATED naming the field, never UNKNOWN or INTERNAL, on every backend."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from mailpool.v1 import conversation_service_pb2 as conv_pb
from mailpool.v1 import conversation_service_pb2_grpc as conv_grpc
from mailpool.v1 import event_service_pb2 as event_pb
from mailpool.v1 import event_service_pb2_grpc as event_grpc
from mailpool.v1 import identity_service_pb2 as identity_pb
from mailpool.v1 import identity_service_pb2_grpc as identity_grpc
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool_server.app import App
from mailpool_server.rpc.status import MAX_ECHO
from mailpool_server.service.paging import encode_token
from tests.sending import send
from tests.support import RichError, Tenant, rich_error

REQUESTS: dict[str, type[Message]] = {
    "/mailpool.v1.SendService/Send": send_pb.SendRequest,
    "/mailpool.v1.IdentityService/GetIdentity": identity_pb.GetIdentityRequest,
    "/mailpool.v1.IdentityService/ListIdentities": identity_pb.ListIdentitiesRequest,
    "/mailpool.v1.ConversationService/ListConversations": conv_pb.ListConversationsRequest,
    "/mailpool.v1.ConversationService/GetConversation": conv_pb.GetConversationRequest,
    "/mailpool.v1.EventService/ListEvents": event_pb.ListEventsRequest,
}


def _bad_utf8(method: str) -> bytes:
    """Bad UTF-8 in the request's first string field."""
    descriptor = REQUESTS[method].DESCRIPTOR
    number = next(f.number for f in descriptor.fields if f.type == f.TYPE_STRING)
    return bytes([number << 3 | 2, 3]) + b"\xff\xfe\xfd"


async def _raw_call(
    channel: grpc.aio.Channel, method: str, body: bytes, tenant: Tenant
) -> grpc.aio.AioRpcError:
    # No serializers: the bytes go as they are.
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(body, metadata=tenant.metadata)
    return caught.value


@pytest.mark.parametrize("method", list(REQUESTS))
@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff\xff",  # a field tag that runs off the end
        "bad-utf8",
        b"\x0a\x64abc",  # a length beyond the message
    ],
    ids=["garbage", "bad-utf8", "truncated"],
)
async def test_undecodable_requests_are_invalid_argument_without_a_traceback(
    channel: grpc.aio.Channel,
    tenant: Tenant,
    method: str,
    body: bytes | str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = _bad_utf8(method) if body == "bad-utf8" else body
    assert isinstance(raw, bytes)
    with caplog.at_level(logging.INFO):
        error = rich_error(await _raw_call(channel, method, raw, tenant))
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert error.message.startswith("request: is not a valid message")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_undecodable_stream_request_is_invalid_argument(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        "/mailpool.v1.EventService/StreamEvents"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call(b"\x0a\x03\xff\xfe\xfd", metadata=tenant.metadata):
            pass
    assert rich_error(caught.value).code == grpc.StatusCode.INVALID_ARGUMENT


def _violations(error: RichError) -> list[str]:
    bad = error.detail(error_details_pb2.BadRequest)
    assert bad is not None
    return [v.field for v in bad.field_violations]


async def _list_conversations(
    channel: grpc.aio.Channel, tenant: Tenant, **fields: object
) -> RichError:
    stub = conv_grpc.ConversationServiceStub(channel)
    request = conv_pb.ListConversationsRequest(identity=tenant.handle, **fields)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListConversations(request, metadata=tenant.metadata)
    return rich_error(caught.value)


@pytest.mark.parametrize("number", [10**30, -(10**30), 2**63])
async def test_page_tokens_holding_huge_numbers_are_refused(
    channel: grpc.aio.Channel, tenant: Tenant, number: int
) -> None:
    error = await _list_conversations(channel, tenant, page_token=encode_token([number, "c"]))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(error) == ["cursor"]
    stub = identity_grpc.IdentityServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListIdentities(
            identity_pb.ListIdentitiesRequest(page_token=encode_token([number])),
            metadata=tenant.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize(
    "stamp",
    [Timestamp(seconds=10**15), Timestamp(seconds=-(10**15)), Timestamp(seconds=0, nanos=-5)],
    ids=["far-future", "far-past", "negative-nanos"],
)
async def test_timestamps_beyond_what_timestamp_allows_are_refused(
    channel: grpc.aio.Channel, tenant: Tenant, field: str, stamp: Timestamp
) -> None:
    error = await _list_conversations(channel, tenant, **{field: stamp})
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(error) == [field]


@pytest.mark.parametrize(
    "value",
    ["²", "٣h", "9" * 5_000, "1" + "0" * 400, "1.5", "1e9m", "99999999999999999999 days"],
)
async def test_no_reply_durations_out_of_range_name_the_field(
    channel: grpc.aio.Channel, tenant: Tenant, value: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(channel, tenant, to="bob@example.com", no_reply_event_after=value)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(error) == ["noReplyEventAfter"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"subject": "Hi\x00there"}, "subject"),
        ({"text": "body\x00"}, "text"),
        ({"to": ["bob\x00@example.com"]}, "to"),
        ({"labels": ["ok", "bad\x00"]}, "labels"),
        ({"idempotency_key": "k\x00"}, "idempotencyKey"),
    ],
)
async def test_nul_characters_are_refused_before_storage(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, fields: dict[str, object], named: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(channel, tenant, **{"to": "bob@example.com", **fields})
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(error) == [named]
    async with app.store.read() as tx:  # nothing was stored
        identity = await tx.identity_by_handle(tenant.handle)
        assert identity is not None and identity.last_seq == 0


async def test_nul_in_a_nested_field_is_named_with_its_path(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    stub = event_grpc.EventServiceStub(channel)
    request = event_pb.StreamEventsRequest(
        whole_org=True, org_since=[event_pb.IdentitySeq(identity="a\x00", seq=1)]
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.StreamEvents(request, metadata=tenant.metadata):
            pass
    assert _violations(rich_error(caught.value)) == ["orgSince.identity"]


async def test_long_values_are_echoed_cut_short(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    long_handle = "h" * 20_000 + "@mailpool.local"
    stub = identity_grpc.IdentityServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetIdentity(
            identity_pb.GetIdentityRequest(identity=long_handle), metadata=tenant.metadata
        )
    error = rich_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "IDENTITY_NOT_FOUND")
    assert len(error.metadata["handle"]) == MAX_ECHO
    assert error.metadata["handle"].startswith("hhhh") and error.metadata["handle"].endswith("…")

    conversations = conv_grpc.ConversationServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await conversations.GetConversation(
            conv_pb.GetConversationRequest(identity=tenant.handle, conv_id="conv_" + "a" * 20_000),
            metadata=tenant.metadata,
        )
    error = rich_error(caught.value)
    assert (error.code, error.metadata["convId"]) == (
        grpc.StatusCode.NOT_FOUND,
        "conv_" + "a" * (MAX_ECHO - 6) + "…",
    )


async def test_two_authorization_values_are_refused(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    stub = identity_grpc.IdentityServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetIdentity(
            identity_pb.GetIdentityRequest(identity=tenant.handle),
            metadata=(*tenant.metadata, ("authorization", "Bearer sk_live_other")),
        )
    error = rich_error(caught.value)
    assert (error.code, error.message) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid api key format",
    )
    assert error.metadata == {"authorization": "given 2 times; give one"}
