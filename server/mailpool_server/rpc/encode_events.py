"""Domain events → mailpool.v1.Event, one typed payload per event type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mailpool.v1 import conversation_pb2, event_pb2, mailbox_pb2
from mailpool_server.rpc.encode import DIRECTIONS, SEND_CLASSES, timestamp
from mailpool_server.service import events as ev
from mailpool_server.service.models import Direction, Event, SendClass

CANCEL_REASONS = {
    "do_not_contact": event_pb2.CANCEL_REASON_DO_NOT_CONTACT,
    "no_accounts": event_pb2.CANCEL_REASON_NO_ACCOUNTS,
    "admin": event_pb2.CANCEL_REASON_ADMIN,
}
BOUNCE_KINDS = {"hard": event_pb2.BOUNCE_KIND_HARD, "soft": event_pb2.BOUNCE_KIND_SOFT}


def _ref(data: Mapping[str, Any]) -> mailbox_pb2.MailboxRef:
    return mailbox_pb2.MailboxRef(id=data["id"], email=data["email"])


def _message(data: Mapping[str, Any]) -> conversation_pb2.Message:
    message = conversation_pb2.Message(
        id=data["id"],
        message_id_header=data["messageIdHeader"],
        from_address=data["from"],
        to=data["to"],
        subject=data["subject"],
    )
    if "direction" in data:
        message.direction = DIRECTIONS[Direction(data["direction"])]
        message.cc.extend(data["cc"])
        message.text, message.html, message.snippet = data["text"], data["html"], data["snippet"]
        message.time.FromMilliseconds(data["ts"])
    return message


def _queued(e: event_pb2.Event, d: Mapping[str, Any]) -> None:
    p = e.email_queued
    p.pending_id, p.recipient = d["pendingId"], d["recipient"]
    p.send_class = SEND_CLASSES[SendClass(d["sendClass"])]
    p.dispatch_time.FromMilliseconds(d["dispatchAt"])
    p.account.CopyFrom(_ref(d["account"]))


def _sent(e: event_pb2.Event, d: Mapping[str, Any]) -> None:
    p = e.email_sent
    p.pending_id = d["pendingId"]
    p.message.CopyFrom(_message(d["message"]))
    p.account.CopyFrom(_ref(d["account"]))


def _cancelled(e: event_pb2.Event, d: Mapping[str, Any]) -> None:
    p = e.email_cancelled
    p.pending_id, p.recipient = d["pendingId"], d["recipient"]
    p.reason = CANCEL_REASONS[d["reason"]]


def _failed(e: event_pb2.Event, d: Mapping[str, Any]) -> None:
    p = e.email_send_failed_permanently
    p.pending_id, p.recipient, p.error, p.attempts = (
        d["pendingId"],
        d["recipient"],
        d["error"],
        d["attempts"],
    )


def _received(e: event_pb2.Event, d: Mapping[str, Any]) -> None:
    e.email_received.message.CopyFrom(_message(d["message"]))


def _replied(e: event_pb2.Event, d: Mapping[str, Any]) -> None:
    e.email_replied.message.CopyFrom(_message(d["message"]))


def _bounced(e: event_pb2.Event, d: Mapping[str, Any]) -> None:
    p = e.email_bounced
    p.recipient, p.status_code, p.diagnostic = d["recipient"], d["statusCode"], d["diagnostic"]
    p.kind = BOUNCE_KINDS[d["kind"]]


def _no_reply(e: event_pb2.Event, d: Mapping[str, Any]) -> None:
    e.email_no_reply.waited_ms = d["waitedMs"]


def _replaced(e: event_pb2.Event, d: Mapping[str, Any]) -> None:
    p = e.mailbox_replaced
    p.old_account.CopyFrom(_ref(d["oldAccount"]))
    p.repinned = d["repinned"]
    if d["newAccount"] is not None:
        p.new_account.CopyFrom(_ref(d["newAccount"]))


PAYLOADS: dict[str, Callable[[event_pb2.Event, Mapping[str, Any]], None]] = {
    ev.EMAIL_QUEUED: _queued,
    ev.EMAIL_SENT: _sent,
    ev.EMAIL_CANCELLED: _cancelled,
    ev.EMAIL_SEND_FAILED_PERMANENTLY: _failed,
    ev.EMAIL_RECEIVED: _received,
    ev.EMAIL_REPLIED: _replied,
    ev.EMAIL_BOUNCED: _bounced,
    ev.EMAIL_NO_REPLY: _no_reply,
    ev.MAILBOX_REPLACED: _replaced,
}
assert set(PAYLOADS) == set(ev.EVENT_TYPES)


def event(e: Event) -> event_pb2.Event:
    message = event_pb2.Event(
        id=e.id,
        seq=e.seq,
        type=e.type,
        create_time=timestamp(e.created_at),
        identity=e.handle,
        conv_id=e.conv_id or "",
    )
    PAYLOADS[e.type](message, e.data)
    return message
