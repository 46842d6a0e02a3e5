"""Protobuf → the contract's JSON: camelCase names, ms + ISO timestamps, numbers for
counts and seqs, null for absent values. Explicit, because the contract is not proto3
JSON; golden tests pin every shape."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import (
    conversation_pb2,
    conversation_service_pb2,
    event_pb2,
    event_service_pb2,
    mailbox_pb2,
    send_pb2,
    send_service_pb2,
)
from mailpool_server.service.clock import iso_ms

JSON = dict[str, Any]


def enum_name(enum_type: Any, number: int, prefix: str) -> str:
    """SEND_CLASS_COLD_FOLLOWUP → 'cold_followup'."""
    return str(enum_type.Name(number)).removeprefix(prefix).lower()


def times(name: str, value: Timestamp | None) -> JSON:
    """{name: ms, nameIso: iso}, both null when the time is unset."""
    if value is None:
        return {name: None, f"{name}Iso": None}
    ms = value.ToMilliseconds()
    return {name: ms, f"{name}Iso": iso_ms(ms)}


def optional_time(message: Any, field: str, name: str) -> JSON:
    return times(name, getattr(message, field) if message.HasField(field) else None)


def account(ref: mailbox_pb2.MailboxRef) -> JSON:
    return {"id": ref.id, "email": ref.email}


def recipient(result: send_pb2.RecipientResult) -> JSON:
    status = enum_name(send_pb2.RecipientStatus, result.status, "RECIPIENT_STATUS_")
    if result.status != send_pb2.RECIPIENT_STATUS_QUEUED:
        reason = enum_name(send_pb2.RejectReason, result.reject_reason, "REJECT_REASON_")
        return {"to": result.to, "status": status, "reason": reason}
    return {
        "to": result.to,
        "status": status,
        "pendingId": result.pending_id,
        "convId": result.conv_id,
        "sendClass": enum_name(send_pb2.SendClass, result.send_class, "SEND_CLASS_"),
        "affinity": enum_name(send_pb2.Affinity, result.affinity, "AFFINITY_"),
        "account": account(result.account),
        **times("dispatchAt", result.dispatch_time),
    }


def send_response(response: send_service_pb2.SendResponse) -> JSON:
    return {
        "identity": response.identity,
        "accepted": response.accepted,
        "queued": response.accepted,  # both names exist in the wild
        "rejected": response.rejected,
        "remaining": response.remaining,
        "results": [recipient(r) for r in response.results],
    }


def conversation_summary(c: conversation_pb2.Conversation) -> JSON:
    return {
        "id": c.id,
        "with": c.correspondent,
        "subject": c.subject,
        "snippet": c.snippet,
        "messageCount": c.message_count,
        "archived": c.archived,
        "labels": list(c.labels),
        **times("lastEventAt", c.last_event_time),
        **times("createdAt", c.create_time),
    }


def message(m: conversation_pb2.Message) -> JSON:
    return {
        "id": m.id,
        "messageIdHeader": m.message_id_header,
        "from": m.from_address,
        "to": list(m.to),
        "cc": list(m.cc),
        "subject": m.subject,
        "text": m.text,
        "html": m.html,
        "snippet": m.snippet,
        **times("ts", m.time),
    }


def timeline_item(item: conversation_pb2.TimelineItem) -> JSON:
    kind = item.WhichOneof("item") or ""
    body: JSON = {"type": kind}
    if kind == "message":
        direction = enum_name(
            conversation_pb2.MessageDirection, item.message.direction, "MESSAGE_DIRECTION_"
        )
        body.update(direction=direction, message=message(item.message))
    elif kind == "no_reply_expired":
        body["waitedMs"] = item.no_reply_expired.waited_ms
    elif kind in ("label_added", "label_removed"):
        body["label"] = getattr(item, kind).label
    body.update(times("ts", item.time))
    return body


def conversation_detail(response: conversation_service_pb2.GetConversationResponse) -> JSON:
    c = response.conversation
    return {
        "identity": response.identity,
        "conversation": {
            **conversation_summary(c),
            **optional_time(c, "no_reply_time", "noReplyAt"),
            **optional_time(c, "last_no_reply_time", "lastNoReplyAt"),
            "events": [timeline_item(i) for i in response.timeline],
        },
    }


def conversation_list(response: conversation_service_pb2.ListConversationsResponse) -> JSON:
    return {
        "identity": response.identity,
        "conversations": [conversation_summary(c) for c in response.conversations],
        "nextCursor": response.next_page_token or None,
    }


def _payload(e: event_pb2.Event) -> JSON:
    kind = e.WhichOneof("payload")
    if kind == "email_queued":
        p = e.email_queued
        return {
            "pendingId": p.pending_id,
            "recipient": p.recipient,
            "sendClass": enum_name(send_pb2.SendClass, p.send_class, "SEND_CLASS_"),
            **times("dispatchAt", p.dispatch_time),
            "account": account(p.account),
        }
    if kind == "email_sent":
        s = e.email_sent
        short = s.message
        return {
            "pendingId": s.pending_id,
            "message": {
                "id": short.id,
                "messageIdHeader": short.message_id_header,
                "from": short.from_address,
                "to": list(short.to),
                "subject": short.subject,
            },
            "account": account(s.account),
        }
    if kind == "email_cancelled":
        c = e.email_cancelled
        reason = enum_name(event_pb2.CancelReason, c.reason, "CANCEL_REASON_")
        return {"pendingId": c.pending_id, "recipient": c.recipient, "reason": reason}
    if kind == "email_send_failed_permanently":
        f = e.email_send_failed_permanently
        return {
            "pendingId": f.pending_id,
            "recipient": f.recipient,
            "error": f.error,
            "attempts": f.attempts,
        }
    if kind in ("email_received", "email_replied"):
        m = getattr(e, kind).message
        direction = enum_name(conversation_pb2.MessageDirection, m.direction, "MESSAGE_DIRECTION_")
        return {"message": {**message(m), "direction": direction}}
    if kind == "email_bounced":
        b = e.email_bounced
        return {
            "recipient": b.recipient,
            "kind": enum_name(event_pb2.BounceKind, b.kind, "BOUNCE_KIND_"),
            "statusCode": b.status_code,
            "diagnostic": b.diagnostic,
        }
    if kind == "email_no_reply":
        return {"waitedMs": e.email_no_reply.waited_ms}
    if kind == "mailbox_replaced":
        r = e.mailbox_replaced
        return {
            "oldAccount": account(r.old_account),
            "repinned": r.repinned,
            "newAccount": account(r.new_account) if r.HasField("new_account") else None,
        }
    raise ValueError(f"event {e.id} has no payload")


def event(e: event_pb2.Event) -> JSON:
    """The envelope, identical on every delivery path."""
    conv_id = e.conv_id or None
    return {
        "id": e.id,
        "seq": e.seq,
        "type": e.type,
        **times("createdAt", e.create_time),
        "convId": conv_id,
        "data": {"identity": e.identity, "convId": conv_id, **_payload(e)},
    }


def event_list(response: event_service_pb2.ListEventsResponse) -> JSON:
    return {
        "identity": response.identity,
        "events": [event(e) for e in response.events],
        "cursor": response.cursor,
        "hasMore": response.has_more,
    }
