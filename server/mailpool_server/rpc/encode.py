"""Domain records → protobuf messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import conversation_pb2, identity_pb2, mailbox_pb2, send_pb2, send_service_pb2
from mailpool_server.service.models import (
    Affinity,
    Conversation,
    Direction,
    IdentityState,
    IdentityToday,
    MailboxToday,
    Message,
    RecipientOutcome,
    RejectReason,
    SendClass,
    SendResult,
    TimelineEntry,
    Transport,
)
from mailpool_server.service.policy import Tier

TIERS = {
    Tier.STARTER: identity_pb2.TIER_STARTER,
    Tier.GROWTH: identity_pb2.TIER_GROWTH,
    Tier.SCALE: identity_pb2.TIER_SCALE,
}
STATES = {
    IdentityState.PROVISIONING: identity_pb2.IDENTITY_STATE_PROVISIONING,
    IdentityState.ACTIVE: identity_pb2.IDENTITY_STATE_ACTIVE,
    IdentityState.SUSPENDED: identity_pb2.IDENTITY_STATE_SUSPENDED,
}
TRANSPORTS = {
    Transport.SMTP: mailbox_pb2.MAILBOX_TRANSPORT_SMTP,
    Transport.MAILDIR: mailbox_pb2.MAILBOX_TRANSPORT_MAILDIR,
}


def timestamp(ms: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def mailbox_ref(mailbox_id: str, email: str) -> mailbox_pb2.MailboxRef:
    return mailbox_pb2.MailboxRef(id=mailbox_id, email=email)


def mailbox(today: MailboxToday) -> mailbox_pb2.Mailbox:
    m = today.mailbox
    return mailbox_pb2.Mailbox(
        id=m.id,
        email=m.email,
        transport=TRANSPORTS[m.transport],
        warmup_stage=m.warmup_stage,
        health=m.health,
        daily_cap=m.daily_cap,
        sent_today=today.sent_today,
        remaining_today=today.remaining,
        excluded=m.excluded,
        create_time=timestamp(m.created_at),
    )


def identity(today: IdentityToday) -> identity_pb2.Identity:
    i = today.identity
    return identity_pb2.Identity(
        handle=i.handle,
        tier=TIERS[i.tier],
        state=STATES[i.state],
        daily_cap=today.daily_cap,
        used_today=today.used_today,
        remaining_today=today.remaining_today,
        reset_time=timestamp(today.reset_at),
        mailboxes=[mailbox(m) for m in today.mailboxes],
        create_time=timestamp(i.created_at),
        head_seq=i.last_seq,
    )


SEND_CLASSES = {
    SendClass.COLD_FIRST_CONTACT: send_pb2.SEND_CLASS_COLD_FIRST_CONTACT,
    SendClass.COLD_FOLLOWUP: send_pb2.SEND_CLASS_COLD_FOLLOWUP,
    SendClass.WARM: send_pb2.SEND_CLASS_WARM,
}
AFFINITIES = {
    Affinity.NEW: send_pb2.AFFINITY_NEW,
    Affinity.EXISTING: send_pb2.AFFINITY_EXISTING,
    Affinity.REASSIGNED: send_pb2.AFFINITY_REASSIGNED,
}
REJECT_REASONS = {
    RejectReason.CAP_EXCEEDED: send_pb2.REJECT_REASON_CAP_EXCEEDED,
    RejectReason.NO_ACCOUNTS: send_pb2.REJECT_REASON_NO_ACCOUNTS,
    RejectReason.INACTIVE: send_pb2.REJECT_REASON_INACTIVE,
    RejectReason.SUSPENDED: send_pb2.REJECT_REASON_SUSPENDED,
    RejectReason.DO_NOT_CONTACT: send_pb2.REJECT_REASON_DO_NOT_CONTACT,
    RejectReason.INVALID_RECIPIENT: send_pb2.REJECT_REASON_INVALID_RECIPIENT,
}
RECIPIENT_STATUSES = {
    "queued": send_pb2.RECIPIENT_STATUS_QUEUED,
    "rejected": send_pb2.RECIPIENT_STATUS_REJECTED,
}
DIRECTIONS = {
    Direction.INBOUND: conversation_pb2.MESSAGE_DIRECTION_INBOUND,
    Direction.OUTBOUND: conversation_pb2.MESSAGE_DIRECTION_OUTBOUND,
}


def recipient_result(outcome: RecipientOutcome) -> send_pb2.RecipientResult:
    result = send_pb2.RecipientResult(
        to=outcome.to,
        status=RECIPIENT_STATUSES[outcome.status],
    )
    if outcome.reason is not None:
        result.reject_reason = REJECT_REASONS[outcome.reason]
    if outcome.status == "queued":
        assert outcome.send_class and outcome.affinity and outcome.account_id
        result.pending_id = outcome.pending_id or ""
        result.conv_id = outcome.conv_id or ""
        result.send_class = SEND_CLASSES[outcome.send_class]
        result.affinity = AFFINITIES[outcome.affinity]
        result.account.CopyFrom(mailbox_ref(outcome.account_id, outcome.account_email or ""))
        result.dispatch_time.FromMilliseconds(outcome.dispatch_at or 0)
    return result


def send_response(result: SendResult) -> send_service_pb2.SendResponse:
    return send_service_pb2.SendResponse(
        identity=result.identity,
        accepted=result.accepted,
        rejected=result.rejected,
        remaining=result.remaining,
        results=[recipient_result(o) for o in result.results],
    )


def conversation(c: Conversation) -> conversation_pb2.Conversation:
    message = conversation_pb2.Conversation(
        id=c.id,
        correspondent=c.correspondent,
        subject=c.subject,
        snippet=c.snippet,
        message_count=c.message_count,
        archived=c.archived,
        labels=list(c.labels),
        last_event_time=timestamp(c.last_event_at),
        create_time=timestamp(c.created_at),
    )
    if c.no_reply_at is not None:
        message.no_reply_time.FromMilliseconds(c.no_reply_at)
    if c.last_no_reply_at is not None:
        message.last_no_reply_time.FromMilliseconds(c.last_no_reply_at)
    return message


def message(m: Message) -> conversation_pb2.Message:
    return conversation_pb2.Message(
        id=m.id,
        direction=DIRECTIONS[m.direction],
        message_id_header=m.message_id_header,
        from_address=m.from_address,
        to=list(m.to),
        cc=list(m.cc),
        subject=m.subject,
        text=m.text,
        html=m.html,
        snippet=m.snippet,
        time=timestamp(m.ts),
        in_reply_to=m.in_reply_to or "",
        references=list(m.references),
    )


def timeline_item(entry: TimelineEntry) -> conversation_pb2.TimelineItem:
    item = conversation_pb2.TimelineItem(time=timestamp(entry.ts))
    if entry.type == "message":
        assert entry.message is not None
        item.message.CopyFrom(message(entry.message))
    elif entry.type == "no_reply_expired":
        item.no_reply_expired.waited_ms = int(str(entry.data["waitedMs"]))
    elif entry.type in ("label_added", "label_removed"):
        getattr(item, entry.type).label = str(entry.data["label"])
    elif entry.type in ("archived", "unarchived"):
        getattr(item, entry.type).archived = entry.type == "archived"
    else:
        raise ValueError(f"unknown timeline item {entry.type!r}")
    return item
