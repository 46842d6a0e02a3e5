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
