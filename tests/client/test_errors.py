"""Typed errors decoded from the real server's rich statuses."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from mailpool.v1 import error_pb2, event_pb2, send_pb2
from mailpool_client import (
    AllRecipientsRejected,
    Conflict,
    EventStream,
    FieldViolation,
    Internal,
    InvalidArgument,
    MailpoolClient,
    NotFound,
    OutOfRange,
    Reason,
    Rejection,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    from_call,
)
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock
from mailpool_server.service.models import IdentityState
from tests.client.conftest import grpc_target, make_client
from tests.support import Tenant, make_tenant


async def drain(stream: EventStream[event_pb2.Event]) -> None:
    async with stream:
        async for _ in stream:
            pass


def test_reasons_are_the_proto_enum_names_without_the_prefix() -> None:
    values = error_pb2.DESCRIPTOR.enum_types_by_name["ErrorReason"].values
    names = [v.name for v in values if v.number != 0]
    assert [r.value for r in Reason] == [n.removeprefix("ERROR_REASON_") for n in names]
    assert Reason.CAP_EXCEEDED == "CAP_EXCEEDED" and isinstance(Reason.CAP_EXCEEDED, str)


@pytest.mark.parametrize(
    ("key", "reason", "message"),
    [
        ("", Reason.API_KEY_MISSING, "missing api key"),
        ("pk_nope", Reason.API_KEY_MALFORMED, "invalid api key format"),
        ("sk_live_" + "0" * 40, Reason.API_KEY_INVALID, "invalid api key"),
    ],
)
async def test_unauthenticated(
    app: App, tenant: Tenant, key: str, reason: Reason, message: str
) -> None:
    async with make_client(grpc_target(app), key) as client:
        with pytest.raises(Unauthenticated) as caught:
            await client.get_identity(tenant.handle)
    error = caught.value
    assert (error.code, error.reason, error.message) == (
        grpc.StatusCode.UNAUTHENTICATED,
        reason,
        message,
    )
    assert isinstance(error.reason, Reason) and error.attempts == 1 and not error.retryable
    assert str(error) == f"UNAUTHENTICATED {reason}: {message}"


async def test_not_found(client: MailpoolClient, tenant: Tenant) -> None:
    with pytest.raises(NotFound) as caught:
        await client.send("nobody@mailpool.local", to="a@example.com", subject="s", text="t")
    assert (caught.value.reason, caught.value.message) == (
        Reason.IDENTITY_NOT_FOUND,
        "identity not found in org",
    )
    assert caught.value.metadata == {"handle": "nobody@mailpool.local"}

    with pytest.raises(NotFound) as caught:
        await client.get_conversation(tenant.handle, "conv_0123456789abcdef")
    assert caught.value.reason == Reason.CONVERSATION_NOT_FOUND
    assert caught.value.metadata == {"convId": "conv_0123456789abcdef"}


async def test_invalid_argument_names_each_field(client: MailpoolClient, tenant: Tenant) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.send(tenant.handle, to="a@example.com")
    error = caught.value
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert error.field_violations == [
        FieldViolation("subject", "is required for a new conversation"),
        FieldViolation("text", "text or html is required"),
    ]
    assert error.message == "subject: is required for a new conversation"

    with pytest.raises(InvalidArgument) as caught:
        await client.send(tenant.handle, to="a@example.com", conv_id="conv_ab", text="t")
    assert caught.value.reason == Reason.MUTUALLY_EXCLUSIVE_FIELDS
    assert [v.field for v in caught.value.field_violations] == ["convId", "to"]
    assert caught.value.metadata == {"fields": "convId,to"}

    with pytest.raises(InvalidArgument) as caught:
        await client.send(
            tenant.handle, to="a@example.com", subject="s", text="t", idempotency_key="has space"
        )
    assert (caught.value.reason, caught.value.message) == (
        Reason.IDEMPOTENCY_KEY_MALFORMED,
        "malformed Idempotency-Key",
    )
    assert caught.value.attempts == 1  # never retried


async def test_a_reused_key_is_a_conflict(client: MailpoolClient, tenant: Tenant) -> None:
    await client.send(
        tenant.handle, to="a@example.com", subject="s", text="t", idempotency_key="k1"
    )
    with pytest.raises(Conflict) as caught:
        await client.send(
            tenant.handle, to="a@example.com", subject="s", text="other", idempotency_key="k1"
        )
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        grpc.StatusCode.ABORTED,
        Reason.IDEMPOTENCY_KEY_REUSED,
        "Idempotency-Key reused with a different body",
    )


async def test_cap_exceeded_carries_the_result_and_the_time_until_midnight(
    client: MailpoolClient, tenant: Tenant, clock: FakeClock
) -> None:
    for batch in range(3):  # starter: 150 a day, 50 recipients a request
        to = [f"lead{batch}-{n}@example.com" for n in range(50)]
        sent = await client.send(tenant.handle, to=to, subject="Hi", text="x")
        assert sent.response.accepted == 50
    with pytest.raises(AllRecipientsRejected) as caught:
        await client.send(tenant.handle, to="one-too-many@example.com", subject="Hi", text="x")
    error = caught.value
    assert isinstance(error, ResourceExhausted)
    assert (error.code, error.reason, error.attempts) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        Reason.CAP_EXCEEDED,
        1,
    )
    assert error.retry_delay == dt.timedelta(hours=16)  # 08:00 → midnight UTC
    assert error.metadata == {"identity": tenant.handle}
    assert (error.response.accepted, error.response.rejected, error.response.remaining) == (0, 1, 0)
    assert error.response.results[0].reject_reason == send_pb2.REJECT_REASON_CAP_EXCEEDED
    assert error.rejections == [Rejection("one-too-many@example.com", "cap_exceeded")]


async def test_no_accounts_when_every_mailbox_is_capped(app: App) -> None:
    tenant = await make_tenant(app, "fresh", "new.fresh@mailpool.local", warmup_stage=0)
    async with make_client(grpc_target(app), tenant.key) as client:
        to = [f"warmup{n}@example.com" for n in range(15)]  # 3 stage-0 mailboxes, 5 each
        assert (
            await client.send(tenant.handle, to=to, subject="Hi", text="x")
        ).response.accepted == 15
        with pytest.raises(AllRecipientsRejected) as caught:
            await client.send(tenant.handle, to="sixteenth@example.com", subject="Hi", text="x")
    assert caught.value.reason == Reason.NO_ACCOUNTS
    assert caught.value.retry_delay == dt.timedelta(hours=16)
    assert caught.value.rejections == [Rejection("sixteenth@example.com", "no_accounts")]
    assert caught.value.response.remaining == 135


async def test_rejections_that_waiting_will_not_fix(app: App, client: MailpoolClient) -> None:
    with pytest.raises(AllRecipientsRejected) as caught:
        await client.send("alice.acme@mailpool.local", to="not an address", subject="s", text="t")
    assert caught.value.reason == Reason.RECIPIENTS_REJECTED
    assert caught.value.retry_delay is None
    assert caught.value.rejections == [Rejection("not an address", "invalid_recipient")]

    suspended = await make_tenant(
        app, "paused", "bob.paused@mailpool.local", state=IdentityState.SUSPENDED
    )
    async with make_client(grpc_target(app), suspended.key) as other:
        with pytest.raises(AllRecipientsRejected) as caught:
            await other.send(
                suspended.handle, to=["a@example.com", "b@example.com"], subject="s", text="t"
            )
    assert caught.value.rejections == [
        Rejection("a@example.com", "suspended"),
        Rejection("b@example.com", "suspended"),
    ]


async def test_a_since_beyond_the_head_is_out_of_range(
    client: MailpoolClient, tenant: Tenant
) -> None:
    with pytest.raises(OutOfRange) as caught:
        await client.list_events(tenant.handle, since=5)
    assert caught.value.reason == Reason.SEQ_IN_FUTURE
    with pytest.raises(OutOfRange) as streamed:
        await drain(client.events(tenant.handle, since=5))
    assert streamed.value.reason == Reason.SEQ_IN_FUTURE
    assert streamed.value.metadata["since"] == "5"


class _Failed:
    """A failed call as a newer server might answer it."""

    def __init__(self, code: grpc.StatusCode, status: status_pb2.Status) -> None:
        self._code, self._status = code, status

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "from the call"

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return (("grpc-status-details-bin", self._status.SerializeToString()),)


def test_an_unknown_reason_stays_a_plain_string() -> None:
    status = status_pb2.Status(code=grpc.StatusCode.UNAVAILABLE.value[0], message="busy")
    info = error_details_pb2.ErrorInfo(reason="SOMETHING_NEW", domain="mailpool")
    status.details.add().Pack(info)
    error = from_call(_Failed(grpc.StatusCode.UNAVAILABLE, status))
    assert type(error) is Unavailable and error.retryable
    assert (error.reason, error.message) == ("SOMETHING_NEW", "busy")
    assert not isinstance(error.reason, Reason)
    # A status whose code is not the call's is someone else's: only the call is believed.
    error = from_call(_Failed(grpc.StatusCode.INTERNAL, status))
    assert (type(error), error.reason, error.message) == (Internal, "", "from the call")
