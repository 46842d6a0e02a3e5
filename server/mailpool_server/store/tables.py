"""Tables. Times are BIGINT Unix milliseconds (UTC), the same on SQLite and PostgreSQL;
daily counters are keyed by the UTC date as 'YYYY-MM-DD'."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class OrgRow(Base):
    __tablename__ = "orgs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Names are shown as created but unique regardless of case, like handles (0002).
    __table_args__ = (Index("ux_orgs_name_lower", func.lower(name), unique=True),)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)


class IdentityRow(Base):
    __tablename__ = "identities"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    handle: Mapped[str] = mapped_column(String(320), unique=True)
    tier: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    # The per-identity event counter: allocated inside each writing transaction,
    # under this row's lock, so that commit order is seq order.
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Optional working hours for cold sends, in the identity's own time zone.
    timezone: Mapped[str | None] = mapped_column(String(64))
    work_start_min: Mapped[int | None] = mapped_column(Integer)
    work_end_min: Mapped[int | None] = mapped_column(Integer)


class MailboxRow(Base):
    __tablename__ = "mailboxes"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    transport: Mapped[str] = mapped_column(String(16))
    smtp_host: Mapped[str | None] = mapped_column(String(255))
    smtp_port: Mapped[int | None] = mapped_column(Integer)
    smtp_username: Mapped[str | None] = mapped_column(String(320))
    smtp_password: Mapped[str | None] = mapped_column(String(1024))
    smtp_tls: Mapped[str | None] = mapped_column(String(16))
    warmup_stage: Mapped[int] = mapped_column(Integer)
    health: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)
    cold_next_at: Mapped[int] = mapped_column(BigInteger, default=0)
    # Warmup progress: qualifying sending days in the current stage, and the last UTC
    # day whose end has been applied (health recovery, stage advancement).
    qualifying_days: Mapped[int] = mapped_column(Integer, default=0)
    closed_through: Mapped[str | None] = mapped_column(String(10))


class IdentityUsageRow(Base):
    __tablename__ = "identity_usage"
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    used: Mapped[int] = mapped_column(Integer)


class MailboxUsageRow(Base):
    __tablename__ = "mailbox_usage"
    mailbox_id: Mapped[str] = mapped_column(ForeignKey("mailboxes.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    sent: Mapped[int] = mapped_column(Integer)  # sends assigned (the cap counter)
    delivered: Mapped[int] = mapped_column(Integer, default=0)  # transport accepted
    hits: Mapped[int] = mapped_column(Integer, default=0)  # health penalties that day


class ContactRow(Base):
    """What an identity knows of one correspondent: affinity pin and reply history."""

    __tablename__ = "contacts"
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    pinned_mailbox_id: Mapped[str | None] = mapped_column(ForeignKey("mailboxes.id"), index=True)
    outbound_count: Mapped[int] = mapped_column(Integer, default=0)
    # Outbound messages since their last reply; warm while a reply exists and this is <= 2.
    outbounds_since_reply: Mapped[int] = mapped_column(Integer, default=0)
    last_reply_at: Mapped[int | None] = mapped_column(BigInteger)


class DoNotContactRow(Base):
    __tablename__ = "do_not_contact"
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)


class ConversationRow(Base):
    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"))
    correspondent: Mapped[str] = mapped_column(String(320))
    correspondent_domain: Mapped[str] = mapped_column(String(255))
    mailbox_id: Mapped[str] = mapped_column(ForeignKey("mailboxes.id"))
    subject: Mapped[str] = mapped_column(Text)
    snippet: Mapped[str] = mapped_column(Text)
    message_count: Mapped[int] = mapped_column(Integer)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[str] = mapped_column(Text)  # JSON list, order of first addition
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_event_at: Mapped[int] = mapped_column(BigInteger)
    # Threading: the newest Message-ID of the thread and the References chain.
    last_message_id_header: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str] = mapped_column(Text)  # JSON list
    no_reply_after_ms: Mapped[int | None] = mapped_column(BigInteger)
    no_reply_at: Mapped[int | None] = mapped_column(BigInteger)
    last_no_reply_at: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        Index("ix_conversations_identity_activity", "identity_id", "last_event_at", "id"),
        Index("ix_conversations_identity_correspondent", "identity_id", "correspondent"),
        Index("ix_conversations_no_reply_at", "no_reply_at"),
    )


class MessageRow(Base):
    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    conv_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    message_id_header: Mapped[str] = mapped_column(String(998), index=True)
    from_address: Mapped[str] = mapped_column(String(320))
    to_addresses: Mapped[str] = mapped_column(Text)  # JSON list
    cc_addresses: Mapped[str] = mapped_column(Text)  # JSON list
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    snippet: Mapped[str] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str] = mapped_column(Text)  # JSON list
    ts: Mapped[int] = mapped_column(BigInteger)


class TimelineRow(Base):
    __tablename__ = "timeline"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    conv_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    ts: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    data: Mapped[str] = mapped_column(Text)  # JSON object
    __table_args__ = (Index("ix_timeline_conv", "conv_id", "id"),)


class PendingSendRow(Base):
    __tablename__ = "pending_sends"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"))
    conv_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"))
    mailbox_id: Mapped[str] = mapped_column(ForeignKey("mailboxes.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    send_class: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    dispatch_at: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # The request that queued it (x-request-id), logged by the dispatcher that delivers it.
    request_id: Mapped[str | None] = mapped_column(String(128))
    __table_args__ = (
        Index("ix_pending_due", "status", "dispatch_at"),
        Index("ix_pending_identity_recipient", "identity_id", "recipient", "status"),
        # GetConversation finds each outbound message's send (0005).
        Index("ix_pending_message", "message_id"),
    )


class EventRow(Base):
    __tablename__ = "events"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), primary_key=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(48))
    conv_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[str] = mapped_column(Text)  # JSON object of the typed payload
    __table_args__ = (Index("ux_events_identity_seq", "identity_id", "seq", unique=True),)


class IdempotencyRow(Base):
    """A completed keyed send. Inserted in the send's own transaction, so a record
    exists exactly when the send committed; duplicates wait on its unique key."""

    __tablename__ = "idempotency_keys"
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)  # JSON of the stored SendResult
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class WebhookEndpointRow(Base):
    """An org's webhook endpoint (one per org). The secret is stored as given: it must
    sign every delivery, so it cannot be hashed (like SMTP passwords)."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    paused_reason: Mapped[str | None] = mapped_column(String(16))
    paused_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_deliveries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # The relay delivering this endpoint now, and until when (Unix ms).
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[int | None] = mapped_column(BigInteger)


class WebhookCursorRow(Base):
    """How far the relay is through one identity's log for one endpoint: the last seq
    delivered or dropped. No row: the identity's whole log (it came after the endpoint)."""

    __tablename__ = "webhook_cursors"
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), primary_key=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
