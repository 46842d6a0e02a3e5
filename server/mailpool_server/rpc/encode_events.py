"""Domain events → mailpool.v1.Event: each payload class onto its oneof case."""

from __future__ import annotations

from mailpool.v1 import conversation_pb2, event_pb2
from mailpool_server.rpc.encode import set_mailbox_ref, set_timestamp
from mailpool_server.rpc.enums import BOUNCE_KINDS, CANCEL_REASONS, DIRECTIONS, SEND_CLASSES
from mailpool_server.service import events as ev


def _fill_sent_message(target: conversation_pb2.Message, m: ev.SentMessage) -> None:
    target.id, target.message_id_header = m.id, m.message_id_header
    target.from_address, target.subject = m.from_address, m.subject
    target.to.extend(m.to)


def _fill_message_body(target: conversation_pb2.Message, m: ev.MessageBody) -> None:
    target.id, target.direction = m.id, DIRECTIONS.to_proto(m.direction)
    target.message_id_header, target.from_address = m.message_id_header, m.from_address
    target.to.extend(m.to)
    target.cc.extend(m.cc)
    target.subject, target.text, target.html, target.snippet = m.subject, m.text, m.html, m.snippet
    set_timestamp(target.time, m.ts)


def _set_payload(e: event_pb2.Event, payload: ev.EventPayload) -> None:
    match payload:
        case ev.EmailQueued():
            q = e.email_queued
            q.pending_id, q.recipient = payload.pending_id, payload.recipient
            q.send_class = SEND_CLASSES.to_proto(payload.send_class)
            set_timestamp(q.dispatch_time, payload.dispatch_at)
            set_mailbox_ref(q.account, payload.mailbox)
        case ev.EmailSent():
            s = e.email_sent
            s.pending_id = payload.pending_id
            _fill_sent_message(s.message, payload.message)
            set_mailbox_ref(s.account, payload.mailbox)
        case ev.EmailCancelled():
            c = e.email_cancelled
            c.pending_id, c.recipient = payload.pending_id, payload.recipient
            c.reason = CANCEL_REASONS.to_proto(payload.reason)
        case ev.EmailSendFailedPermanently():
            f = e.email_send_failed_permanently
            f.pending_id, f.recipient = payload.pending_id, payload.recipient
            f.error, f.attempts = payload.error, payload.attempts
        case ev.EmailReceived():
            _fill_message_body(e.email_received.message, payload.message)
        case ev.EmailReplied():
            _fill_message_body(e.email_replied.message, payload.message)
        case ev.EmailBounced():
            b = e.email_bounced
            b.recipient, b.status_code = payload.recipient, payload.status_code
            b.diagnostic = payload.diagnostic
            b.kind = BOUNCE_KINDS.to_proto(payload.kind)
        case ev.EmailNoReply():
            e.email_no_reply.waited_ms = payload.waited_ms
        case ev.MailboxReplaced():
            r = e.mailbox_replaced
            set_mailbox_ref(r.old_account, payload.old_mailbox)
            r.repinned = payload.repinned
            if payload.new_mailbox is not None:
                set_mailbox_ref(r.new_account, payload.new_mailbox)


def fill_event(target: event_pb2.Event, e: ev.Event) -> None:
    """Write `e` into an empty Event: a stream writes it straight into its response,
    ListEvents into its repeated field (building one and handing it over would be a
    copy, which upb makes by serializing and parsing)."""
    target.id, target.seq, target.type = e.id, e.seq, e.type.value
    set_timestamp(target.create_time, e.created_at)
    target.identity = e.handle
    if e.conv_id:
        target.conv_id = e.conv_id
    _set_payload(target, e.payload)


def event(e: ev.Event) -> event_pb2.Event:
    message = event_pb2.Event()
    fill_event(message, e)
    return message
