"""Domain records. Plain frozen dataclasses; times are Unix milliseconds (UTC)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mailpool_server.service.policy import Tier, is_excluded, mailbox_daily_cap


class IdentityState(enum.StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Transport(enum.StrEnum):
    SMTP = "smtp"
    MAILDIR = "maildir"


class SmtpTls(enum.StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"
    NONE = "none"


@dataclass(frozen=True)
class Org:
    id: str
    name: str
    created_at: int


@dataclass(frozen=True)
class ApiKeyInfo:
    """What is kept of a key: never the key itself, only its hash and prefix."""

    id: str
    org_id: str
    prefix: str
    key_hash: str
    created_at: int
    revoked_at: int | None = None
    expires_at: int | None = None

    def usable_at(self, now: int) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class Identity:
    id: str
    org_id: str
    handle: str
    tier: Tier
    state: IdentityState
    created_at: int
    last_seq: int = 0
    # Optional working hours for cold sends (minutes after local midnight).
    timezone: str | None = None
    work_start_min: int | None = None
    work_end_min: int | None = None


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: SmtpTls


@dataclass(frozen=True)
class Mailbox:
    id: str
    identity_id: str
    email: str
    transport: Transport
    warmup_stage: int
    health: int
    created_at: int
    smtp: SmtpSettings | None = None
    # Earliest time the next cold send may go out from this mailbox (pacing).
    cold_next_at: int = 0
    qualifying_days: int = 0
    closed_through: str | None = None

    @property
    def daily_cap(self) -> int:
        return mailbox_daily_cap(self.warmup_stage)

    @property
    def excluded(self) -> bool:
        return is_excluded(self.health)


@dataclass(frozen=True)
class MailboxToday:
    """A mailbox with what it has used of the current UTC day."""

    mailbox: Mailbox
    sent_today: int

    @property
    def remaining(self) -> int:
        return max(0, self.mailbox.daily_cap - self.sent_today)

    @property
    def pickable(self) -> bool:
        return self.remaining > 0 and not self.mailbox.excluded


@dataclass(frozen=True)
class IdentityToday:
    """An identity with today's usage, as IdentityService reports it."""

    identity: Identity
    daily_cap: int
    used_today: int
    reset_at: int
    mailboxes: list[MailboxToday]

    @property
    def remaining_today(self) -> int:
        return max(0, self.daily_cap - self.used_today)


class SendClass(enum.StrEnum):
    COLD_FIRST_CONTACT = "cold_first_contact"
    COLD_FOLLOWUP = "cold_followup"
    WARM = "warm"


class Affinity(enum.StrEnum):
    NEW = "new"
    EXISTING = "existing"
    REASSIGNED = "reassigned"


class RecipientStatus(enum.StrEnum):
    QUEUED = "queued"
    REJECTED = "rejected"


class RejectReason(enum.StrEnum):
    CAP_EXCEEDED = "cap_exceeded"
    NO_ACCOUNTS = "no_accounts"
    INACTIVE = "inactive"
    SUSPENDED = "suspended"
    DO_NOT_CONTACT = "do_not_contact"
    INVALID_RECIPIENT = "invalid_recipient"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True)
class Contact:
    """What an identity knows of one correspondent."""

    identity_id: str
    address: str
    pinned_mailbox_id: str | None = None
    outbound_count: int = 0
    outbounds_since_reply: int = 0
    last_reply_at: int | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    identity_id: str
    correspondent: str
    mailbox_id: str
    subject: str
    snippet: str
    message_count: int
    archived: bool
    labels: tuple[str, ...]
    created_at: int
    last_event_at: int
    last_message_id_header: str | None
    references: tuple[str, ...]
    no_reply_after_ms: int | None = None
    no_reply_at: int | None = None
    last_no_reply_at: int | None = None


@dataclass(frozen=True)
class Message:
    id: str
    conv_id: str
    direction: Direction
    message_id_header: str
    from_address: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    html: str
    snippet: str
    ts: int
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


class TimelineType(enum.StrEnum):
    MESSAGE = "message"
    NO_REPLY_EXPIRED = "no_reply_expired"
    LABEL_ADDED = "label_added"
    LABEL_REMOVED = "label_removed"
    ARCHIVED = "archived"
    UNARCHIVED = "unarchived"


@dataclass(frozen=True)
class TimelineEntry:
    """One item of a conversation's timeline: `message` is set for MESSAGE,
    `waited_ms` for NO_REPLY_EXPIRED, `label` for LABEL_ADDED / LABEL_REMOVED.
    `delivery`: an outbound message's send as it stood when the timeline was read
    (never stored with the item: the queued send's row is the one record of it)."""

    type: TimelineType
    ts: int
    message: Message | None = None
    waited_ms: int | None = None
    label: str | None = None
    delivery: Delivery | None = None


@dataclass(frozen=True)
class Delivery:
    """An outbound message's send: its pending id and where it stands."""

    pending_id: str
    status: PendingStatus


class PendingStatus(enum.StrEnum):
    """Where a queued send is: QUEUED until a dispatcher claims it (SENDING, under a
    lease), then SENT or FAILED; CANCELLED when dropped before a claim."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PendingSend:
    id: str
    identity_id: str
    conv_id: str
    message_id: str
    mailbox_id: str
    recipient: str
    send_class: SendClass
    status: PendingStatus
    dispatch_at: int
    created_at: int
    attempts: int = 0
    # The id of the request that queued it (logged when it is delivered).
    request_id: str | None = None


@dataclass(frozen=True)
class MailboxRef:
    """A mailbox as send results and events name it (the contract calls it an account)."""

    id: str
    email: str


@dataclass(frozen=True)
class QueuedRecipient:
    """Where an accepted recipient's send went."""

    pending_id: str
    conv_id: str
    send_class: SendClass
    affinity: Affinity
    mailbox: MailboxRef
    dispatch_at: int


@dataclass(frozen=True)
class RecipientOutcome:
    """One recipient of a send: `queued` is set when it was queued, `reason` when not."""

    to: str
    queued: QueuedRecipient | None = None
    reason: RejectReason | None = None

    @property
    def status(self) -> RecipientStatus:
        return RecipientStatus.QUEUED if self.queued is not None else RecipientStatus.REJECTED


@dataclass(frozen=True)
class SendResult:
    identity: str
    accepted: int
    rejected: int
    remaining: int
    results: tuple[RecipientOutcome, ...]
