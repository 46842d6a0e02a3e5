"""Domain records → protobuf messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import identity_pb2, mailbox_pb2
from mailpool_server.service.models import IdentityState, IdentityToday, MailboxToday, Transport
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
