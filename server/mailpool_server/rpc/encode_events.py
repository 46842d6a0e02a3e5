"""Domain events → mailpool.v1.Event: each payload class onto its oneof case."""

from __future__ import annotations

from mailpool.v1 import conversation_pb2, event_pb2
from mailpool_server.rpc.encode import mailbox_ref, timestamp
from mailpool_server.rpc.enums import BOUNCE_KINDS, CANCEL_REASONS, DIRECTIONS, SEND_CLASSES
from mailpool_server.service import events as ev


def _sent_message(m: ev.SentMessage) -> conversation_pb2.Message:
    return conversation_pb2.Message(
        id=m.id,
        message_id_header=m.message_id_header,
        from_address=m.from_address,
        to=m.to,
        subject=m.subject,
    )


def _message_body(m: ev.MessageBody) -> conversation_pb2.Message:
    return conversation_pb2.Message(
        id=m.id,
        direction=DIRECTIONS.to_proto(m.direction),
        message_id_header=m.message_id_header,
        from_address=m.from_address,
        to=m.to,
        cc=m.cc,
        subject=m.subject,
        text=m.text,
        html=m.html,
        snippet=m.snippet,
        time=timestamp(m.ts),
    )


def _set_payload(e: event_pb2.Event, payload: ev.EventPayload) -> None:
    match payload:
        case ev.EmailQueued():
            q = e.email_queued
            q.pending_id, q.recipient = payload.pending_id, payload.recipient
            q.send_class = SEND_CLASSES.to_proto(payload.send_class)
            q.dispatch_time.CopyFrom(timestamp(payload.dispatch_at))
            q.account.CopyFrom(mailbox_ref(payload.mailbox))
        case ev.EmailSent():
            s = e.email_sent
            s.pending_id = payload.pending_id
            s.message.CopyFrom(_sent_message(payload.message))
            s.account.CopyFrom(mailbox_ref(payload.mailbox))
        case ev.EmailCancelled():
            c = e.email_cancelled
            c.pending_id, c.recipient = payload.pending_id, payload.recipient
            c.reason = CANCEL_REASONS.to_proto(payload.reason)
        case ev.EmailSendFailedPermanently():
            f = e.email_send_failed_permanently
            f.pending_id, f.recipient = payload.pending_id, payload.recipient
            f.error, f.attempts = payload.error, payload.attempts
        case ev.EmailReceived():
            e.email_received.message.CopyFrom(_message_body(payload.message))
        case ev.EmailReplied():
            e.email_replied.message.CopyFrom(_message_body(payload.message))
        case ev.EmailBounced():
            b = e.email_bounced
            b.recipient, b.status_code = payload.recipient, payload.status_code
            b.diagnostic = payload.diagnostic
            b.kind = BOUNCE_KINDS.to_proto(payload.kind)
        case ev.EmailNoReply():
            e.email_no_reply.waited_ms = payload.waited_ms
        case ev.MailboxReplaced():
            r = e.mailbox_replaced
            r.old_account.CopyFrom(mailbox_ref(payload.old_mailbox))
            r.repinned = payload.repinned
            if payload.new_mailbox is not None:
                r.new_account.CopyFrom(mailbox_ref(payload.new_mailbox))


def event(e: ev.Event) -> event_pb2.Event:
    message = event_pb2.Event(
        id=e.id,
        seq=e.seq,
        type=e.type.value,
        create_time=timestamp(e.created_at),
        identity=e.handle,
        conv_id=e.conv_id or "",
    )
    _set_payload(message, e.payload)
    return message
