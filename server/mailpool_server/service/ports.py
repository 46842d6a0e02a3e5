"""What the use cases need from storage. store/ implements these protocols.

A use case opens a unit of work with `store.read()` or `store.write()`; each is one
database transaction, committed when the block exits cleanly and rolled back when
it raises.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from mailpool_server.service.events import Event, NewEvent
from mailpool_server.service.models import (
    ApiKeyInfo,
    Contact,
    Conversation,
    Identity,
    IdentityState,
    Mailbox,
    Message,
    Org,
    PendingSend,
    PendingStatus,
    SendResult,
    TimelineEntry,
)
from mailpool_server.service.outbound import OutgoingMessage
from mailpool_server.service.picker import Candidate
from mailpool_server.service.webhook_models import PauseReason, WebhookEndpoint


class WriteLockTimeout(Exception):
    """The store could not start a write transaction within the time asked for."""


@dataclass(frozen=True)
class IdempotencyRecord:
    """A keyed send: its request fingerprint and, once it committed, its result."""

    fingerprint: str
    result: SendResult | None
    expires_at: int


@dataclass(frozen=True)
class Outbound:
    """Everything one queued recipient writes: its conversation (new, or as updated),
    the message and its timeline items, the queued send and the recipient's contact.
    One call, so a backend can write it in one round trip."""

    conversation: Conversation
    new_conversation: bool
    message: Message
    timeline: tuple[TimelineEntry, ...]
    pending: PendingSend
    contact: Contact


@dataclass(frozen=True)
class SendContext:
    """What a send reads once it holds its identity's lock: the identity's sends
    accepted on the day; of the recipients' addresses, those on the org's
    do-not-contact list and the identity's contacts (by address); and the mailboxes
    the picker may choose among (see SendRepo.send_context)."""

    used: int
    blocked: frozenset[str]
    contacts: dict[str, Contact]
    candidates: list[Candidate]


@dataclass(frozen=True)
class MailboxCount:
    """One mailbox's share of a send: sends to count against its cap today, and its
    next cold-send slot when the send moved it (else None)."""

    mailbox_id: str
    count: int
    cap: int
    cold_next_at: int | None


@dataclass(frozen=True)
class SendClaim:
    """What a keyed send's claim found (SendRepo.claim_for_send): the live record
    another request committed under the key, or else a new claim and the identity
    with the send's handle, its row locked (None when no identity has the handle)."""

    existing: IdempotencyRecord | None
    identity: Identity | None


@dataclass(frozen=True)
class SendTally:
    """What a send writes once every recipient is placed (SendRepo.finish_send): each
    queued recipient's rows, its sends counted against the identity's cap (`count`,
    `cap`) and its mailboxes', its events, and, for a keyed send, the result stored
    under its key."""

    outbounds: list[Outbound]
    identity: Identity  # its lock held by the caller
    day: str
    count: int
    cap: int
    mailboxes: list[MailboxCount]
    events: list[NewEvent]
    at: int
    key: str | None  # of the identity's org
    result: SendResult


@dataclass(frozen=True)
class CancelledSend:
    """A queued send that cancel_queued dropped."""

    pending_id: str
    identity_id: str
    conv_id: str
    recipient: str


@dataclass(frozen=True)
class PendingRef:
    """Whose a queued send is, and where it stands."""

    pending_id: str
    identity_id: str
    conv_id: str
    recipient: str
    status: PendingStatus


@dataclass(frozen=True)
class LabelledConversation:
    """What label stats need of one labelled conversation."""

    labels: tuple[str, ...]
    replied: bool  # it holds an inbound message
    no_reply_fired: bool  # its no-reply timer fired at least once


@dataclass(frozen=True)
class MailboxDay:
    """One UTC day of a mailbox: deliveries and health penalties."""

    day: str
    delivered: int
    hits: int


class OrgRepo(Protocol):
    async def add_org(self, org: Org) -> None: ...
    async def org_by_name(self, name: str) -> Org | None:
        """Names are unique, and compared, regardless of case."""
        ...

    async def add_api_key(self, key: ApiKeyInfo) -> None: ...
    async def api_key_by_hash(self, key_hash: str) -> ApiKeyInfo | None: ...
    async def api_keys_of(self, org_id: str) -> list[ApiKeyInfo]: ...
    async def revoke_api_key(self, key_id: str, at: int) -> None: ...


class IdentityRepo(Protocol):
    async def add_identity(self, identity: Identity) -> None: ...
    async def identity_by_handle(self, handle: str, *, lock: bool = False) -> Identity | None:
        """With lock, the row is held until commit (as lock_identity does)."""
        ...

    async def identities_of(self, org_id: str, after_handle: str, limit: int) -> list[Identity]: ...
    async def set_identity_state(self, identity_id: str, state: IdentityState) -> None: ...
    async def set_working_hours(
        self, identity_id: str, timezone: str | None, start_min: int | None, end_min: int | None
    ) -> None: ...
    async def add_mailbox(self, mailbox: Mailbox) -> None: ...
    async def mailbox_by_email(self, email: str) -> Mailbox | None: ...
    async def mailboxes_of(self, identity_ids: list[str]) -> list[Mailbox]: ...
    async def identity_used(self, identity_ids: list[str], day: str) -> dict[str, int]: ...
    async def mailboxes_sent(self, mailbox_ids: list[str], day: str) -> dict[str, int]: ...
    async def identity_used_days(
        self, identity_id: str, first_day: str, last_day: str
    ) -> dict[str, int]:
        """The identity's accepted sends per UTC day in first_day..last_day (inclusive,
        "YYYY-MM-DD"); days without a row are left out."""
        ...

    async def mailboxes_sent_days(
        self, mailbox_ids: list[str], first_day: str, last_day: str
    ) -> dict[tuple[str, str], int]:
        """Sends assigned per (mailbox id, UTC day) in first_day..last_day (inclusive);
        days without a row are left out."""
        ...

    async def add_identity_usage(
        self, identity_id: str, day: str, count: int, cap: int
    ) -> bool: ...
    async def add_mailbox_usage(self, mailbox_id: str, day: str, count: int, cap: int) -> bool: ...


class SendRepo(Protocol):
    async def lock_identity(self, identity_id: str) -> Identity:
        """Re-read the identity and hold its row until commit: sends, seq allocation
        and cap counting of one identity are serialized by this lock."""
        ...

    async def claim_idempotency_key(
        self, org_id: str, key: str, fingerprint: str, now: int, expires_at: int
    ) -> IdempotencyRecord | None:
        """Insert a claim for (org, key), or return the live record another request
        committed. Waits while a concurrent transaction holds an uncommitted claim.
        An expired record is replaced by the new claim."""
        ...

    async def claim_for_send(
        self, org_id: str, key: str, fingerprint: str, now: int, expires_at: int, handle: str
    ) -> SendClaim:
        """claim_idempotency_key and, when the claim is new, identity_by_handle(handle,
        lock=True), in one call (one statement on PostgreSQL, unless the key was taken).
        The identity is locked only once the key is claimed, as two calls would do it:
        a duplicate request waits on the key, holding nothing the first one needs."""
        ...

    async def idempotency_record(
        self, org_id: str, key: str, now: int
    ) -> IdempotencyRecord | None: ...
    async def complete_idempotency_key(self, org_id: str, key: str, result: SendResult) -> None: ...
    async def add_do_not_contact(self, org_id: str, address: str, reason: str, at: int) -> None: ...
    async def send_context(
        self,
        org_id: str,
        identity_id: str,
        day: str,
        addresses: list[str],
        *,
        want: int = 0,
        pinned: tuple[str, ...] = (),
    ) -> SendContext:
        """The identity's usage on `day`, what the org and the identity know of these
        addresses (which the org must not contact, the identity's contacts among
        them), and the picker's candidates: the identity's mailboxes that can still
        send on `day` (not excluded for health, cap left), every pinned one first (in
        `pinned`, or pinned by one of these contacts), then the best others by the
        picker's order (remaining x (stage + 1), oldest first on ties; `order` is the
        age rank); at most `want` + len(pinned) + len(addresses) in all.
        Placing `want` recipients only ever takes from these: before each pick, an
        unpicked one of the best `want` is still at least as good as any left out.
        One read (one statement on a database), made after the identity's lock is held."""
        ...

    async def contacts_among(
        self, identity_id: str, addresses: list[str]
    ) -> dict[str, Contact]: ...
    async def save_contact(self, contact: Contact) -> None: ...
    async def set_mailbox_cold_next(self, mailbox_id: str, at: int) -> None: ...
    async def add_pending_send(self, pending: PendingSend) -> None: ...
    async def add_outbound(self, outbound: Outbound) -> None:
        """add_conversation (or update_conversation), add_message, add_timeline for
        each item, add_pending_send and save_contact, in one call."""
        ...

    async def finish_send(self, tally: SendTally) -> int | None:
        """add_outbound for each queued recipient, add_identity_usage, add_mailbox_usage
        for each mailbox and their cold slots, append_events, and
        complete_idempotency_key for a keyed send, in one call (one statement on
        PostgreSQL for a send to one recipient, one more for each other). The
        identity's new head seq; None when any counter refused (then the caller must
        roll back: some rows may have been written)."""
        ...


class ConversationRepo(Protocol):
    async def add_conversation(self, conversation: Conversation) -> None: ...
    async def update_conversation(self, conversation: Conversation) -> None: ...
    async def conversation_by_id(self, conv_id: str) -> Conversation | None: ...
    async def add_message(self, message: Message) -> None: ...
    async def add_timeline(self, conv_id: str, entry: TimelineEntry) -> None: ...
    async def timeline_of(self, conv_id: str) -> list[TimelineEntry]: ...
    async def conversation_by_message_ids(
        self, identity_id: str, headers: list[str]
    ) -> Conversation | None: ...
    async def message_by_header(self, identity_id: str, header: str) -> Message | None: ...
    async def conversations_page(
        self,
        identity_id: str,
        *,
        archived: bool | None,
        correspondent: str | None,
        domain: str | None,
        since: int | None,
        until: int | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[Conversation]: ...
    async def labelled_conversations(self, identity_id: str) -> list[LabelledConversation]:
        """The identity's conversations that carry a label, archived ones included."""
        ...


class EventRepo(Protocol):
    async def append_events(
        self, identity: Identity, events: list[NewEvent], at: int
    ) -> list[Event]:
        """Give the events the identity's next seqs (from its counter row, inside
        this transaction) and store them."""
        ...

    async def events_after(
        self, identity: Identity, since: int, types: tuple[str, ...], limit: int
    ) -> list[Event]: ...
    async def head_seqs(self, identity_ids: list[str]) -> dict[str, int]: ...


class DeliveryRepo(Protocol):
    async def claim_due(self, now: int, lease_until: int, limit: int) -> list[OutgoingMessage]: ...
    async def finish_sent(self, pending_id: str, attempt: int, at: int) -> bool: ...
    async def finish_failed(self, pending_id: str, attempt: int, error: str) -> bool: ...
    async def retry_later(self, pending_id: str, attempt: int, at: int, error: str) -> bool: ...
    async def count_delivery(self, mailbox_id: str, day: str) -> None: ...
    async def lock_mailbox_health(self, mailbox_id: str) -> int: ...
    async def record_health_hit(self, mailbox_id: str, health: int, day: str) -> None: ...
    async def contacts_pinned_to(self, mailbox_id: str) -> list[str]: ...
    async def move_pins(self, dead_id: str, assignments: dict[str, str]) -> None: ...
    async def cancel_queued(
        self,
        *,
        mailbox_id: str | None = None,
        identity_ids: list[str] | None = None,
        recipient: str | None = None,
        pending_id: str | None = None,
    ) -> list[CancelledSend]:
        """Cancel the QUEUED sends matching every filter given (a claimed one is left
        alone, also when a dispatcher claims it concurrently)."""
        ...

    async def pending_status(self, pending_id: str) -> PendingStatus | None: ...
    async def pending_ref(self, pending_id: str) -> PendingRef | None: ...
    async def due_no_reply(self, now: int, limit: int, *, lock: bool) -> list[Conversation]: ...
    async def mailboxes_to_close(self, today: str) -> list[Mailbox]: ...
    async def mailbox_days(
        self, mailbox_id: str, after: str | None, before: str
    ) -> list[MailboxDay]: ...
    async def set_warmup(
        self, mailbox_id: str, stage: int, qualifying_days: int, health: int, closed_through: str
    ) -> None: ...


class WebhookRepo(Protocol):
    async def add_webhook(self, endpoint: WebhookEndpoint) -> None:
        """One endpoint per org: a second one for the org is refused."""
        ...

    async def webhook_of_org(self, org_id: str) -> WebhookEndpoint | None: ...
    async def webhook_by_id(self, endpoint_id: str) -> WebhookEndpoint | None: ...
    async def set_webhook_url(self, endpoint_id: str, url: str) -> None: ...
    async def set_webhook_secret(self, endpoint_id: str, secret: str) -> None: ...
    async def pause_webhook(self, endpoint_id: str, reason: PauseReason, at: int) -> None: ...
    async def enable_webhook(self, endpoint_id: str) -> None:
        """Active again, with no pause reason and no failed deliveries counted."""
        ...

    async def set_webhook_failures(self, endpoint_id: str, failures: int) -> None: ...
    async def webhook_cursors(self, endpoint_id: str) -> dict[str, int]:
        """identity id → the last seq the relay is done with (delivered or dropped)."""
        ...

    async def set_webhook_cursors(self, endpoint_id: str, cursors: dict[str, int]) -> None:
        """Insert or replace the cursors given; others stay."""
        ...

    async def claim_webhooks(
        self, owner: str, now: int, lease_until: int, limit: int
    ) -> list[WebhookEndpoint]:
        """Lease active endpoints nobody holds (no lease, or one that ran out before
        now) to `owner`. PostgreSQL: rows another relay is claiming are skipped."""
        ...

    async def renew_webhook_lease(
        self, endpoint_id: str, owner: str, lease_until: int
    ) -> WebhookEndpoint | None:
        """Extend `owner`'s lease and return the endpoint as it is now, with its row
        held until commit; None when `owner` no longer holds it (another relay took
        it over): the fence every write of delivery progress goes through."""
        ...

    async def release_webhook_lease(self, endpoint_id: str, owner: str) -> None: ...


class Tx(
    OrgRepo,
    IdentityRepo,
    SendRepo,
    ConversationRepo,
    EventRepo,
    DeliveryRepo,
    WebhookRepo,
    Protocol,
):
    """Every repository, inside one transaction."""


class Store(Protocol):
    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A read transaction: one snapshot across its statements."""
        ...

    def lookup(self) -> AbstractAsyncContextManager[Tx]:
        """Reads outside any transaction, each statement on its own: for what one
        SELECT answers (a key check, an idempotent replay, a page of events), where a
        transaction would only add statements (round trips, on PostgreSQL)."""
        ...

    def write(self, *, lock_timeout_s: float | None = None) -> AbstractAsyncContextManager[Tx]:
        """A write transaction; with lock_timeout_s, raise WriteLockTimeout when it
        cannot start (or take a contended row or key lock) within that time."""
        ...


class EventListener(Protocol):
    def events_committed(self, identity_id: str, head_seq: int) -> None:
        """Called after a transaction that appended events has committed."""
        ...
