"""Protobuf → the contract's JSON: camelCase names, ms + ISO timestamps, numbers for
counts and seqs, null for absent values. Explicit, because the contract is not proto3
JSON. Every function returns a shape declared in shapes.py (mypy holds it to the
declaration, and the OpenAPI document is made from the same declarations); golden tests
pin the output."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import (
    conversation_pb2,
    conversation_service_pb2,
    event_pb2,
    event_service_pb2,
    identity_service_pb2,
    mailbox_pb2,
    send_pb2,
    send_service_pb2,
)
from mailpool_server.rest import shapes
from mailpool_server.rest.names import enum_name
from mailpool_server.service.clock import iso_ms


def stamp(value: Timestamp) -> tuple[int, str]:
    """(ms, ISO): the contract gives every time twice."""
    ms = value.ToMilliseconds()
    return ms, iso_ms(ms)


def optional_stamp(value: Timestamp | None) -> tuple[int, str] | tuple[None, None]:
    """stamp(value), or both null when the time is unset."""
    return (None, None) if value is None else stamp(value)


def account(ref: mailbox_pb2.MailboxRef) -> shapes.Account:
    return {"id": ref.id, "email": ref.email}


def recipient(
    result: send_pb2.RecipientResult,
) -> shapes.QueuedRecipient | shapes.RejectedRecipient:
    if result.status != send_pb2.RECIPIENT_STATUS_QUEUED:
        reason = enum_name(send_pb2.RejectReason, result.reject_reason)
        return {"to": result.to, "status": "rejected", "reason": reason}
    dispatch_at, dispatch_at_iso = stamp(result.dispatch_time)
    return {
        "to": result.to,
        "status": "queued",
        "pendingId": result.pending_id,
        "convId": result.conv_id,
        "sendClass": enum_name(send_pb2.SendClass, result.send_class),
        "affinity": enum_name(send_pb2.Affinity, result.affinity),
        "account": account(result.account),
        "dispatchAt": dispatch_at,
        "dispatchAtIso": dispatch_at_iso,
    }


def send_response(response: send_service_pb2.SendResponse) -> shapes.SendResponse:
    return {
        "identity": response.identity,
        "accepted": response.accepted,
        "queued": response.accepted,
        "rejected": response.rejected,
        "remaining": response.remaining,
        "results": [recipient(r) for r in response.results],
    }


def conversation_summary(c: conversation_pb2.Conversation) -> shapes.ConversationSummary:
    last_event_at, last_event_at_iso = stamp(c.last_event_time)
    created_at, created_at_iso = stamp(c.create_time)
    return {
        "id": c.id,
        "with": c.correspondent,
        "subject": c.subject,
        "snippet": c.snippet,
        "messageCount": c.message_count,
        "archived": c.archived,
        "labels": list(c.labels),
        "lastEventAt": last_event_at,
        "lastEventAtIso": last_event_at_iso,
        "createdAt": created_at,
        "createdAtIso": created_at_iso,
    }


def message(m: conversation_pb2.Message) -> shapes.Message:
    ts, ts_iso = stamp(m.time)
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
        "ts": ts,
        "tsIso": ts_iso,
    }


def direction(m: conversation_pb2.Message) -> str:
    return enum_name(conversation_pb2.MessageDirection, m.direction)


def timeline_item(item: conversation_pb2.TimelineItem) -> shapes.TimelineItem:
    ts, ts_iso = stamp(item.time)
    kind = item.WhichOneof("item")
    if kind == "message":
        return {
            "type": kind,
            "direction": direction(item.message),
            "message": message(item.message),
            "ts": ts,
            "tsIso": ts_iso,
        }
    if kind == "no_reply_expired":
        waited = item.no_reply_expired.waited_ms
        return {"type": kind, "waitedMs": waited, "ts": ts, "tsIso": ts_iso}
    if kind == "label_added" or kind == "label_removed":
        label = (item.label_added if kind == "label_added" else item.label_removed).label
        return {"type": kind, "label": label, "ts": ts, "tsIso": ts_iso}
    if kind == "archived" or kind == "unarchived":
        return {"type": kind, "ts": ts, "tsIso": ts_iso}
    raise ValueError("timeline item has no case")


# Every response that carries a conversation with its timeline (the same three fields).
DetailResponse = (
    conversation_service_pb2.GetConversationResponse
    | conversation_service_pb2.ArchiveConversationResponse
    | conversation_service_pb2.UnarchiveConversationResponse
    | conversation_service_pb2.AddLabelsResponse
    | conversation_service_pb2.RemoveLabelsResponse
)


def conversation_detail(response: DetailResponse) -> shapes.ConversationDetail:
    c = response.conversation
    no_reply_at, no_reply_at_iso = optional_stamp(
        c.no_reply_time if c.HasField("no_reply_time") else None
    )
    last_no_reply_at, last_no_reply_at_iso = optional_stamp(
        c.last_no_reply_time if c.HasField("last_no_reply_time") else None
    )
    return {
        "identity": response.identity,
        "conversation": {
            **conversation_summary(c),
            "noReplyAt": no_reply_at,
            "noReplyAtIso": no_reply_at_iso,
            "lastNoReplyAt": last_no_reply_at,
            "lastNoReplyAtIso": last_no_reply_at_iso,
            "events": [timeline_item(i) for i in response.timeline],
        },
    }


def conversation_list(
    response: conversation_service_pb2.ListConversationsResponse,
) -> shapes.ConversationList:
    return {
        "identity": response.identity,
        "conversations": [conversation_summary(c) for c in response.conversations],
        "nextCursor": response.next_page_token or None,
    }


def _data(e: event_pb2.Event) -> shapes.AnyEventData:
    base: shapes.EventData = {"identity": e.identity, "convId": e.conv_id or None}
    kind = e.WhichOneof("payload")
    if kind == "email_queued":
        q = e.email_queued
        dispatch_at, dispatch_at_iso = stamp(q.dispatch_time)
        return {
            **base,
            "pendingId": q.pending_id,
            "recipient": q.recipient,
            "sendClass": enum_name(send_pb2.SendClass, q.send_class),
            "dispatchAt": dispatch_at,
            "dispatchAtIso": dispatch_at_iso,
            "account": account(q.account),
        }
    if kind == "email_sent":
        s = e.email_sent
        short = s.message
        return {
            **base,
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
        reason = enum_name(event_pb2.CancelReason, c.reason)
        return {**base, "pendingId": c.pending_id, "recipient": c.recipient, "reason": reason}
    if kind == "email_send_failed_permanently":
        f = e.email_send_failed_permanently
        return {
            **base,
            "pendingId": f.pending_id,
            "recipient": f.recipient,
            "error": f.error,
            "attempts": f.attempts,
        }
    if kind == "email_received" or kind == "email_replied":
        m = (e.email_received if kind == "email_received" else e.email_replied).message
        return {**base, "message": {**message(m), "direction": direction(m)}}
    if kind == "email_bounced":
        b = e.email_bounced
        return {
            **base,
            "recipient": b.recipient,
            "kind": enum_name(event_pb2.BounceKind, b.kind),
            "statusCode": b.status_code,
            "diagnostic": b.diagnostic,
        }
    if kind == "email_no_reply":
        return {**base, "waitedMs": e.email_no_reply.waited_ms}
    if kind == "mailbox_replaced":
        r = e.mailbox_replaced
        return {
            **base,
            "oldAccount": account(r.old_account),
            "repinned": r.repinned,
            "newAccount": account(r.new_account) if r.HasField("new_account") else None,
        }
    raise ValueError(f"event {e.id} has no payload")


def event(e: event_pb2.Event) -> shapes.Event:
    """The envelope, identical on every delivery path."""
    created_at, created_at_iso = stamp(e.create_time)
    return {
        "id": e.id,
        "seq": e.seq,
        "type": e.type,
        "createdAt": created_at,
        "createdAtIso": created_at_iso,
        "convId": e.conv_id or None,
        "data": _data(e),
    }


def event_list(response: event_service_pb2.ListEventsResponse) -> shapes.EventList:
    return {
        "identity": response.identity,
        "events": [event(e) for e in response.events],
        "cursor": response.cursor,
        "hasMore": response.has_more,
    }


def cancelled_send(response: send_service_pb2.CancelSendResponse) -> shapes.CancelledSend:
    return {
        "identity": response.identity,
        "pendingId": response.pending_id,
        "convId": response.conv_id,
        "to": response.recipient,
        "status": "cancelled",
    }


def label_stats(response: conversation_service_pb2.GetLabelStatsResponse) -> shapes.LabelStats:
    return {
        "identity": response.identity,
        "labels": [
            {
                "label": entry.label,
                "conversations": entry.conversations,
                "replied": entry.replied,
                "noReply": entry.no_reply,
            }
            for entry in response.labels
        ],
    }


def usage_history(response: identity_service_pb2.GetUsageHistoryResponse) -> shapes.UsageHistory:
    return {
        "identity": response.identity,
        "days": [{"day": d.day, "accepted": d.accepted, "cap": d.cap} for d in response.days],
        "mailboxes": [
            {
                "id": m.id,
                "email": m.email,
                "days": [{"day": d.day, "sent": d.sent, "cap": d.cap} for d in m.days],
            }
            for m in response.mailboxes
        ],
    }
