"""Every event type's data, as the use cases build it, encodes to its typed payload."""

from __future__ import annotations

from mailpool.v1 import conversation_pb2, event_pb2
from mailpool_server.rpc.encode_events import event
from mailpool_server.service import events as ev
from mailpool_server.service.models import Direction, Event, Message

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
        Event(
            "evt_X",
            "idn_1",
            "alice@mailpool.local",
            7,
            new.type,
            new.conv_id,
            1_777_278_929_000,
            new.data,
        )
    )


def test_envelope() -> None:
    e = encoded(ev.email_no_reply("conv_1", 3_600_000))
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
    outbound = Message(**{**MESSAGE.__dict__, "direction": Direction.OUTBOUND})
    p = encoded(ev.email_sent("psn_1", outbound, "acc_1", "a@x.example")).email_sent
    assert (p.pending_id, p.account.id, p.message.message_id_header) == (
        "psn_1",
        "acc_1",
        "<a@b.example>",
    )
    assert p.message.direction == conversation_pb2.MESSAGE_DIRECTION_UNSPECIFIED
    assert p.message.text == ""


def test_inbound_carries_the_whole_message() -> None:
    replied = encoded(ev.email_inbound(MESSAGE, threaded=True))
    received = encoded(ev.email_inbound(MESSAGE, threaded=False))
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
    cancelled = encoded(ev.email_cancelled("conv_1", "psn_1", "x@example.com", "do_not_contact"))
    assert cancelled.email_cancelled.reason == event_pb2.CANCEL_REASON_DO_NOT_CONTACT
    failed = encoded(
        ev.email_send_failed_permanently(
            "conv_1", "psn_1", "x@example.com", "550 5.1.1 no such user", 3
        )
    )
    assert (
        failed.email_send_failed_permanently.attempts,
        failed.email_send_failed_permanently.error,
    ) == (3, "550 5.1.1 no such user")
    bounced = encoded(ev.email_bounced(None, "x@example.com", "hard", "5.1.1", "unknown"))
    assert bounced.email_bounced.kind == event_pb2.BOUNCE_KIND_HARD
    assert bounced.conv_id == ""
    gone = encoded(ev.mailbox_replaced(ev.account("acc_1", "a@x.example"), 4, None))
    assert (gone.mailbox_replaced.repinned, gone.mailbox_replaced.HasField("new_account")) == (
        4,
        False,
    )
    moved = encoded(
        ev.mailbox_replaced(
            ev.account("acc_1", "a@x.example"), 4, ev.account("acc_2", "b@x.example")
        )
    )
    assert moved.mailbox_replaced.new_account.id == "acc_2"
