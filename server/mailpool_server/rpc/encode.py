"""Domain records → protobuf messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import conversation_pb2, identity_pb2, mailbox_pb2, send_pb2, send_service_pb2
from mailpool_server.rpc.enums import (
    AFFINITIES,
    DIRECTIONS,
    IDENTITY_STATES,
    RECIPIENT_STATUSES,
    REJECT_REASONS,
    SEND_CLASSES,
    SEND_STATES,
    TIERS,
    TRANSPORTS,
)
from mailpool_server.service.models import (
    Conversation,
    IdentityToday,
    MailboxRef,
    MailboxToday,
    Message,
    RecipientOutcome,
    SendResult,
    TimelineEntry,
    TimelineType,
)


def timestamp(ms: int) -> Timestamp:
    """A stored time (Unix ms) as a Timestamp. Built directly: FromMilliseconds is
    Python with a range check per call, and every time here was stored by mailpool
    inside Timestamp's range (request times are checked as they come in)."""
    message = Timestamp()
    set_timestamp(message, ms)
    return message


def set_timestamp(target: Timestamp, ms: int) -> None:
    """timestamp(), written into a message's field in place. On hot paths: upb's CopyFrom
    (and a message given to a constructor) serializes the source and parses it back."""
    target.seconds, target.nanos = ms // 1000, ms % 1000 * 1_000_000


def set_mailbox_ref(target: mailbox_pb2.MailboxRef, ref: MailboxRef) -> None:
    """A mailbox reference, written in place (see set_timestamp)."""
    target.id, target.email = ref.id, ref.email


def mailbox(today: MailboxToday) -> mailbox_pb2.Mailbox:
    m = today.mailbox
    return mailbox_pb2.Mailbox(
        id=m.id,
        email=m.email,
        transport=TRANSPORTS.to_proto(m.transport),
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
        tier=TIERS.to_proto(i.tier),
        state=IDENTITY_STATES.to_proto(i.state),
        daily_cap=today.daily_cap,
        used_today=today.used_today,
        remaining_today=today.remaining_today,
        reset_time=timestamp(today.reset_at),
        mailboxes=[mailbox(m) for m in today.mailboxes],
        create_time=timestamp(i.created_at),
        head_seq=i.last_seq,
    )


def _fill_recipient_result(result: send_pb2.RecipientResult, outcome: RecipientOutcome) -> None:
    result.to, result.status = outcome.to, RECIPIENT_STATUSES.to_proto(outcome.status)
    if outcome.reason is not None:
        result.reject_reason = REJECT_REASONS.to_proto(outcome.reason)
    if (queued := outcome.queued) is not None:
        result.pending_id = queued.pending_id
        result.conv_id = queued.conv_id
        result.send_class = SEND_CLASSES.to_proto(queued.send_class)
        result.affinity = AFFINITIES.to_proto(queued.affinity)
        set_mailbox_ref(result.account, queued.mailbox)
        set_timestamp(result.dispatch_time, queued.dispatch_at)


def send_response(result: SendResult) -> send_service_pb2.SendResponse:
    response = send_service_pb2.SendResponse(
        identity=result.identity,
        accepted=result.accepted,
        rejected=result.rejected,
        remaining=result.remaining,
    )
    for outcome in result.results:  # filled in place: a list given to the constructor is copied
        _fill_recipient_result(response.results.add(), outcome)
    return response


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
        set_timestamp(message.no_reply_time, c.no_reply_at)
    if c.last_no_reply_at is not None:
        set_timestamp(message.last_no_reply_time, c.last_no_reply_at)
    return message


def message(m: Message) -> conversation_pb2.Message:
    return conversation_pb2.Message(
        id=m.id,
        direction=DIRECTIONS.to_proto(m.direction),
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
    match entry.type:
        case TimelineType.MESSAGE:
            assert entry.message is not None
            item.message.CopyFrom(message(entry.message))
            if entry.delivery is not None:
                item.message.delivery.pending_id = entry.delivery.pending_id
                item.message.delivery.state = SEND_STATES.to_proto(entry.delivery.status)
        case TimelineType.NO_REPLY_EXPIRED:
            item.no_reply_expired.waited_ms = entry.waited_ms or 0
        case TimelineType.LABEL_ADDED:
            item.label_added.label = entry.label or ""
        case TimelineType.LABEL_REMOVED:
            item.label_removed.label = entry.label or ""
        case TimelineType.ARCHIVED:
            item.archived.archived = True
        case TimelineType.UNARCHIVED:
            item.unarchived.archived = False
    return item
