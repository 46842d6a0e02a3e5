"""Every event type's data, as the use cases build it, encodes to its typed payload."""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import conversation_pb2, event_pb2
from mailpool_server.rpc.encode import timestamp
from mailpool_server.rpc.encode_events import event
from mailpool_server.service import events as ev
from mailpool_server.service.models import Direction, MailboxRef, Message

MESSAGE = Message(
    id="msg_1",
    conv_id="conv_1",
    direction=Direction.INBOUND,
    message_id_header="<a@b.example>",
    from_address="bob@example.com",
    to=("alice.1@mailboxes.mailpool.local",),
    cc=("c@example.com",),
    subject="Re: Hi",
    text="Thanks",
    html="",
    snippet="Thanks",
    ts=1_777_278_929_000,
)


def encoded(new: ev.NewEvent) -> event_pb2.Event:
    return event(
        ev.Event(
            "evt_X", "idn_1", "alice@mailpool.local", 7, new.conv_id, 1_777_278_929_000, new.payload
        )
    )


def test_envelope() -> None:
    e = encoded(ev.NewEvent("conv_1", ev.EmailNoReply(3_600_000)))
    assert (e.id, e.seq, e.type, e.identity, e.conv_id) == (
        "evt_X",
        7,
        "email.no_reply",
        "alice@mailpool.local",
        "conv_1",
    )
    assert e.create_time.ToMilliseconds() == 1_777_278_929_000
    assert e.email_no_reply.waited_ms == 3_600_000


def test_sent_carries_the_short_message() -> None:
    outbound = dataclasses.replace(MESSAGE, direction=Direction.OUTBOUND)
    sent = ev.EmailSent("psn_1", ev.SentMessage.of(outbound), MailboxRef("acc_1", "a@x.example"))
    p = encoded(ev.NewEvent("conv_1", sent)).email_sent
    assert (p.pending_id, p.account.id, p.message.message_id_header) == (
        "psn_1",
        "acc_1",
        "<a@b.example>",
    )
    assert p.message.direction == conversation_pb2.MESSAGE_DIRECTION_UNSPECIFIED
    assert p.message.text == ""


def test_inbound_carries_the_whole_message() -> None:
    replied = encoded(ev.inbound(MESSAGE, threaded=True))
    received = encoded(ev.inbound(MESSAGE, threaded=False))
    assert (replied.type, received.type) == ("email.replied", "email.received")
    m = replied.email_replied.message
    assert m.direction == conversation_pb2.MESSAGE_DIRECTION_INBOUND
    assert (list(m.cc), m.text, m.time.ToMilliseconds()) == (
        ["c@example.com"],
        "Thanks",
        MESSAGE.ts,
    )
    assert received.email_received.message == m


def test_cancelled_failed_bounced_replaced() -> None:
    cancelled = encoded(
        ev.NewEvent(
            "conv_1",
            ev.EmailCancelled("psn_1", "x@example.com", ev.CancelReason.DO_NOT_CONTACT),
        )
    )
    assert cancelled.email_cancelled.reason == event_pb2.CANCEL_REASON_DO_NOT_CONTACT
    failed = encoded(
        ev.NewEvent(
            "conv_1",
            ev.EmailSendFailedPermanently("psn_1", "x@example.com", "550 5.1.1 no such user", 3),
        )
    )
    assert (
        failed.email_send_failed_permanently.attempts,
        failed.email_send_failed_permanently.error,
    ) == (3, "550 5.1.1 no such user")
    bounced = encoded(
        ev.NewEvent(None, ev.EmailBounced("x@example.com", ev.BounceKind.HARD, "5.1.1", "unknown"))
    )
    assert bounced.email_bounced.kind == event_pb2.BOUNCE_KIND_HARD
    assert bounced.conv_id == ""
    old = MailboxRef("acc_1", "a@x.example")
    gone = encoded(ev.NewEvent(None, ev.MailboxReplaced(old, 4, None)))
    assert (gone.mailbox_replaced.repinned, gone.mailbox_replaced.HasField("new_account")) == (
        4,
        False,
    )
    moved = encoded(
        ev.NewEvent(None, ev.MailboxReplaced(old, 4, MailboxRef("acc_2", "b@x.example")))
    )
    assert moved.mailbox_replaced.new_account.id == "acc_2"


@pytest.mark.parametrize(
    "ms", [0, 1, 999, 1000, 1_764_500_000_123, -1, -1001, 253_402_300_799_999, -62_135_596_800_000]
)
def test_times_are_the_timestamps_from_milliseconds_makes(ms: int) -> None:
    expected = Timestamp()
    expected.FromMilliseconds(ms)
    assert timestamp(ms) == expected
