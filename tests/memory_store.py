"""An in-memory `service.ports.Store`: the test double the use-case tests run on.

It keeps the SQL store's observable rules (tests/store/contract runs the same suite
against both, so neither drifts): a write's changes become visible only when its
block exits cleanly and vanish when it raises; writes take turns (one asyncio.Lock,
so the row locks of the SQL store have nothing left to do here) and `lock_timeout_s`
bounds the wait with WriteLockTimeout; a read sees the data committed before its first
statement, and nothing committed after it.

Every table is a dict of frozen records. A write copies the dicts on its first
change (copy-on-write; the records themselves are shared, being immutable) and the
store adopts the copy on commit, so a reader's snapshot is never touched. Keys,
unique columns and references are checked as the schema checks them, raising
IntegrityError, so a use case cannot store here what the database would refuse.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

from mailpool_server.service.addresses import domain_of
from mailpool_server.service.events import Event, NewEvent
from mailpool_server.service.ids import new_event_id
from mailpool_server.service.models import (
    ApiKeyInfo,
    Contact,
    Conversation,
    Delivery,
    Direction,
    Identity,
    IdentityState,
    Mailbox,
    Message,
    Org,
    PendingSend,
    PendingStatus,
    SendResult,
    TimelineEntry,
    TimelineType,
)
from mailpool_server.service.outbound import OutgoingMessage
from mailpool_server.service.picker import Candidate, shortlist
from mailpool_server.service.ports import (
    CancelledSend,
    IdempotencyRecord,
    LabelledConversation,
    MailboxDay,
    Outbound,
    PendingRef,
    SendClaim,
    SendContext,
    SendTally,
    Store,
    Tx,
    WriteLockTimeout,
)
from mailpool_server.service.webhook_models import EndpointStatus, PauseReason, WebhookEndpoint
from mailpool_server.store.events import stored_events
from mailpool_server.store.outbound import (
    add_outbound_in_steps,
    claim_for_send_in_steps,
    finish_send_in_steps,
)

K = TypeVar("K")
V = TypeVar("V")
# The SQL store keeps at most this much of a delivery error (store/delivery.py).
MAX_ERROR_CHARS = 2000


class IntegrityError(Exception):
    """A write the SQL schema would refuse: a duplicate key or unique value, or a
    reference to a row that does not exist."""


class ReadOnlyUnitOfWork(Exception):
    """A change attempted inside `store.read()`. The SQL backends disagree on what
    happens then (SQLite discards it, PostgreSQL commits it), so here it is an error."""


class UnitOfWorkClosed(Exception):
    """A transaction object used after its `read()` / `write()` block ended."""


@dataclass(frozen=True)
class MailboxUsage:
    """One mailbox_usage row: sends assigned (the cap counter), deliveries, penalties."""

    sent: int = 0
    delivered: int = 0
    hits: int = 0


@dataclass(frozen=True)
class IdempotencyEntry:
    """One idempotency_keys row; `result` None is a claim whose send has not completed."""

    fingerprint: str
    result: SendResult | None
    created_at: int
    expires_at: int


@dataclass(frozen=True)
class DoNotContactEntry:
    reason: str
    created_at: int


@dataclass(frozen=True)
class TimelineItem:
    """One timeline row: the message is referenced by id and joined when read."""

    type: TimelineType
    ts: int
    message_id: str | None
    waited_ms: int | None
    label: str | None


@dataclass(frozen=True)
class PendingRow:
    """One pending_sends row: the queued send plus its delivery bookkeeping."""

    send: PendingSend
    lease_until: int | None = None
    last_error: str | None = None
    sent_at: int | None = None


@dataclass
class Tables:
    """Every table, keyed as the schema keys it. Values are immutable; a change
    replaces a value, never mutates one."""

    orgs: dict[str, Org] = field(default_factory=dict)
    api_keys: dict[str, ApiKeyInfo] = field(default_factory=dict)
    identities: dict[str, Identity] = field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    identity_usage: dict[tuple[str, str], int] = field(default_factory=dict)
    mailbox_usage: dict[tuple[str, str], MailboxUsage] = field(default_factory=dict)
    contacts: dict[tuple[str, str], Contact] = field(default_factory=dict)
    do_not_contact: dict[tuple[str, str], DoNotContactEntry] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyEntry] = field(default_factory=dict)
    conversations: dict[str, Conversation] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    timeline: dict[str, tuple[TimelineItem, ...]] = field(default_factory=dict)
    pending: dict[str, PendingRow] = field(default_factory=dict)
    events: dict[str, tuple[Event, ...]] = field(default_factory=dict)
    webhooks: dict[str, WebhookEndpoint] = field(default_factory=dict)
    webhook_cursors: dict[tuple[str, str], int] = field(default_factory=dict)

    def copy(self) -> Tables:
        """A copy whose dicts can change without touching this one."""
        return Tables(**{f.name: dict(getattr(self, f.name)) for f in dataclasses.fields(self)})


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise IntegrityError(problem)


def _update_where(
    table: dict[K, V], matches: Callable[[V], bool], change: Callable[[V], V]
) -> list[K]:
    """UPDATE … WHERE: replace every matching row; the keys of those changed."""
    keys = [key for key, row in table.items() if matches(row)]
    for key in keys:
        table[key] = change(table[key])
    return keys


def _delivery(send: PendingSend | None) -> Delivery | None:
    return None if send is None else Delivery(send.id, send.status)


class MemoryTx:
    """Every repository of `service.ports.Tx` on one unit of work's tables."""

    def __init__(self, committed: Callable[[], Tables], *, writable: bool) -> None:
        # The view is taken at the first statement, as SQLite and PostgreSQL take theirs.
        self._committed = committed
        self._tables: Tables | None = None
        self._writable = writable
        self._copied = False
        self._open = True

    # -- unit of work ---------------------------------------------------------------

    @property
    def changed(self) -> Tables | None:
        """The tables this unit of work wrote, or None if it changed nothing."""
        return self._tables if self._copied else None

    def close(self) -> None:
        self._open = False

    def _read(self) -> Tables:
        if not self._open:
            raise UnitOfWorkClosed("this transaction's unit of work has ended")
        if self._tables is None:
            self._tables = self._committed()
        return self._tables

    def _write(self) -> Tables:
        tables = self._read()
        if not self._writable:
            raise ReadOnlyUnitOfWork("a change inside store.read()")
        if not self._copied:
            self._tables = tables = tables.copy()
            self._copied = True
        return tables

    # -- orgs and API keys ----------------------------------------------------------

    async def add_org(self, org: Org) -> None:
        t = self._write()
        _require(org.id not in t.orgs, f"org {org.id} exists")
        taken = {o.name.lower() for o in t.orgs.values()}
        _require(org.name.lower() not in taken, f"org name {org.name} taken")
        t.orgs[org.id] = org

    async def org_by_name(self, name: str) -> Org | None:
        wanted = name.lower()  # as the unique index on lower(name) compares
        return next((o for o in self._read().orgs.values() if o.name.lower() == wanted), None)

    async def add_api_key(self, key: ApiKeyInfo) -> None:
        t = self._write()
        _require(key.id not in t.api_keys, f"api key {key.id} exists")
        _require(all(k.key_hash != key.key_hash for k in t.api_keys.values()), "key hash taken")
        _require(key.org_id in t.orgs, f"no org {key.org_id}")
        t.api_keys[key.id] = key

    async def api_key_by_hash(self, key_hash: str) -> ApiKeyInfo | None:
        return next((k for k in self._read().api_keys.values() if k.key_hash == key_hash), None)

    async def api_keys_of(self, org_id: str) -> list[ApiKeyInfo]:
        keys = [k for k in self._read().api_keys.values() if k.org_id == org_id]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    async def revoke_api_key(self, key_id: str, at: int) -> None:
        # The first revocation's time stands.
        _update_where(
            self._write().api_keys,
            lambda k: k.id == key_id and k.revoked_at is None,
            lambda k: replace(k, revoked_at=at),
        )

    # -- identities, mailboxes, usage -----------------------------------------------

    async def add_identity(self, identity: Identity) -> None:
        t = self._write()
        _require(identity.id not in t.identities, f"identity {identity.id} exists")
        _require(
            all(i.handle != identity.handle for i in t.identities.values()),
            f"handle {identity.handle} taken",
        )
        _require(identity.org_id in t.orgs, f"no org {identity.org_id}")
        t.identities[identity.id] = identity

    async def identity_by_handle(self, handle: str, *, lock: bool = False) -> Identity | None:
        # No row locks: writes take turns on the store's lock already.
        return next((i for i in self._read().identities.values() if i.handle == handle), None)

    async def identities_of(self, org_id: str, after_handle: str, limit: int) -> list[Identity]:
        identities = [
            i
            for i in self._read().identities.values()
            if i.org_id == org_id and i.handle > after_handle
        ]
        return sorted(identities, key=lambda i: i.handle)[:limit]

    async def set_identity_state(self, identity_id: str, state: IdentityState) -> None:
        self._change(self._write().identities, identity_id, lambda i: replace(i, state=state))

    async def set_working_hours(
        self, identity_id: str, timezone: str | None, start_min: int | None, end_min: int | None
    ) -> None:
        self._change(
            self._write().identities,
            identity_id,
            lambda i: replace(i, timezone=timezone, work_start_min=start_min, work_end_min=end_min),
        )

    async def add_mailbox(self, mailbox: Mailbox) -> None:
        t = self._write()
        _require(mailbox.id not in t.mailboxes, f"mailbox {mailbox.id} exists")
        _require(
            all(m.email != mailbox.email for m in t.mailboxes.values()),
            f"mailbox email {mailbox.email} taken",
        )
        _require(mailbox.identity_id in t.identities, f"no identity {mailbox.identity_id}")
        t.mailboxes[mailbox.id] = mailbox

    async def mailbox_by_email(self, email: str) -> Mailbox | None:
        return next((m for m in self._read().mailboxes.values() if m.email == email), None)

    async def mailboxes_of(self, identity_ids: list[str]) -> list[Mailbox]:
        wanted = set(identity_ids)
        mailboxes = [m for m in self._read().mailboxes.values() if m.identity_id in wanted]
        return sorted(mailboxes, key=lambda m: (m.created_at, m.id))

    async def identity_used(self, identity_ids: list[str], day: str) -> dict[str, int]:
        usage = self._read().identity_usage
        return {i: usage[i, day] for i in identity_ids if (i, day) in usage}

    async def mailboxes_sent(self, mailbox_ids: list[str], day: str) -> dict[str, int]:
        usage = self._read().mailbox_usage
        return {m: usage[m, day].sent for m in mailbox_ids if (m, day) in usage}

    async def _shortlist(
        self, identity_id: str, day: str, want: int, pinned: set[str]
    ) -> list[Candidate]:
        usage = self._read().mailbox_usage
        mailboxes = await self.mailboxes_of([identity_id])
        healthy = [
            Candidate(
                m.id,
                m.email,
                m.warmup_stage,
                max(0, m.daily_cap - (usage[m.id, day].sent if (m.id, day) in usage else 0)),
                False,
                rank,
                m.daily_cap,
                m.cold_next_at,
            )
            for rank, m in enumerate(mailboxes, start=1)
            if not m.excluded
        ]
        return shortlist(healthy, want, sorted(pinned & {m.id for m in mailboxes}))

    async def identity_used_days(
        self, identity_id: str, first_day: str, last_day: str
    ) -> dict[str, int]:
        usage = self._read().identity_usage
        return {
            day: used
            for (i, day), used in usage.items()
            if i == identity_id and first_day <= day <= last_day
        }

    async def mailboxes_sent_days(
        self, mailbox_ids: list[str], first_day: str, last_day: str
    ) -> dict[tuple[str, str], int]:
        usage = self._read().mailbox_usage
        return {
            (m, day): row.sent
            for (m, day), row in usage.items()
            if m in mailbox_ids and first_day <= day <= last_day
        }

    async def add_identity_usage(self, identity_id: str, day: str, count: int, cap: int) -> bool:
        if count > cap:
            return False
        t = self._write()
        _require(identity_id in t.identities, f"no identity {identity_id}")
        used = t.identity_usage.get((identity_id, day), 0)
        if used + count > cap:  # the conditional upsert refuses an oversend
            return False
        t.identity_usage[identity_id, day] = used + count
        return True

    async def add_mailbox_usage(self, mailbox_id: str, day: str, count: int, cap: int) -> bool:
        if count > cap:
            return False
        t = self._write()
        _require(mailbox_id in t.mailboxes, f"no mailbox {mailbox_id}")
        usage = t.mailbox_usage.get((mailbox_id, day), MailboxUsage())
        if usage.sent + count > cap:
            return False
        t.mailbox_usage[mailbox_id, day] = replace(usage, sent=usage.sent + count)
        return True

    # -- sends ----------------------------------------------------------------------

    async def lock_identity(self, identity_id: str) -> Identity:
        identity = self._read().identities.get(identity_id)
        if identity is None:
            raise LookupError(f"identity {identity_id} vanished")
        return identity

    async def claim_idempotency_key(
        self, org_id: str, key: str, fingerprint: str, now: int, expires_at: int
    ) -> IdempotencyRecord | None:
        t = self._write()
        _require(org_id in t.orgs, f"no org {org_id}")
        entry = t.idempotency.get((org_id, key))
        if entry is not None and entry.expires_at > now:
            return IdempotencyRecord(entry.fingerprint, entry.result, entry.expires_at)
        # A new key, or one past its lifetime: this request claims it.
        t.idempotency[org_id, key] = IdempotencyEntry(fingerprint, None, now, expires_at)
        return None

    async def claim_for_send(
        self, org_id: str, key: str, fingerprint: str, now: int, expires_at: int, handle: str
    ) -> SendClaim:
        return await claim_for_send_in_steps(
            self, org_id, key, fingerprint, now, expires_at, handle
        )

    async def idempotency_record(self, org_id: str, key: str, now: int) -> IdempotencyRecord | None:
        entry = self._read().idempotency.get((org_id, key))
        if entry is None or entry.expires_at <= now or entry.result is None:
            return None
        return IdempotencyRecord(entry.fingerprint, entry.result, entry.expires_at)

    async def complete_idempotency_key(self, org_id: str, key: str, result: SendResult) -> None:
        self._change(self._write().idempotency, (org_id, key), lambda e: replace(e, result=result))

    async def add_do_not_contact(self, org_id: str, address: str, reason: str, at: int) -> None:
        t = self._write()
        _require(org_id in t.orgs, f"no org {org_id}")
        # ON CONFLICT DO NOTHING: the first reason stands.
        t.do_not_contact.setdefault((org_id, address), DoNotContactEntry(reason, at))

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
        blocked = await self._do_not_contact_among(org_id, addresses)
        contacts = await self.contacts_among(identity_id, addresses)
        pins = set(pinned) | {c.pinned_mailbox_id for c in contacts.values() if c.pinned_mailbox_id}
        return SendContext(
            self._read().identity_usage.get((identity_id, day), 0),
            frozenset(blocked),
            contacts,
            await self._shortlist(identity_id, day, want, pins),
        )

    async def _do_not_contact_among(self, org_id: str, addresses: list[str]) -> set[str]:
        blocked = self._read().do_not_contact
        return {a for a in addresses if (org_id, a) in blocked}

    async def contacts_among(self, identity_id: str, addresses: list[str]) -> dict[str, Contact]:
        contacts = self._read().contacts
        return {a: contacts[identity_id, a] for a in addresses if (identity_id, a) in contacts}

    async def save_contact(self, contact: Contact) -> None:
        t = self._write()
        _require(contact.identity_id in t.identities, f"no identity {contact.identity_id}")
        self._require_mailbox(t, contact.pinned_mailbox_id)
        t.contacts[contact.identity_id, contact.address] = contact

    async def set_mailbox_cold_next(self, mailbox_id: str, at: int) -> None:
        self._change(self._write().mailboxes, mailbox_id, lambda m: replace(m, cold_next_at=at))

    async def add_outbound(self, outbound: Outbound) -> None:
        await add_outbound_in_steps(self, outbound)

    async def finish_send(self, tally: SendTally) -> int | None:
        return await finish_send_in_steps(self, tally)

    async def add_pending_send(self, pending: PendingSend) -> None:
        t = self._write()
        _require(pending.id not in t.pending, f"pending send {pending.id} exists")
        _require(pending.identity_id in t.identities, f"no identity {pending.identity_id}")
        _require(pending.conv_id in t.conversations, f"no conversation {pending.conv_id}")
        _require(pending.message_id in t.messages, f"no message {pending.message_id}")
        _require(pending.mailbox_id in t.mailboxes, f"no mailbox {pending.mailbox_id}")
        t.pending[pending.id] = PendingRow(pending)

    # -- conversations ----------------------------------------------------------------

    async def add_conversation(self, conversation: Conversation) -> None:
        t = self._write()
        _require(conversation.id not in t.conversations, f"conversation {conversation.id} exists")
        self._require_conversation_refs(t, conversation)
        t.conversations[conversation.id] = conversation

    async def update_conversation(self, conversation: Conversation) -> None:
        t = self._write()
        if conversation.id in t.conversations:
            self._require_conversation_refs(t, conversation)
            t.conversations[conversation.id] = conversation

    async def conversation_by_id(self, conv_id: str) -> Conversation | None:
        return self._read().conversations.get(conv_id)

    async def add_message(self, message: Message) -> None:
        t = self._write()
        _require(message.id not in t.messages, f"message {message.id} exists")
        _require(message.conv_id in t.conversations, f"no conversation {message.conv_id}")
        t.messages[message.id] = message

    async def add_timeline(self, conv_id: str, entry: TimelineEntry) -> None:
        t = self._write()
        _require(conv_id in t.conversations, f"no conversation {conv_id}")
        message_id = entry.message.id if entry.message is not None else None
        _require(message_id is None or message_id in t.messages, f"no message {message_id}")
        item = TimelineItem(entry.type, entry.ts, message_id, entry.waited_ms, entry.label)
        t.timeline[conv_id] = (*t.timeline.get(conv_id, ()), item)

    async def timeline_of(self, conv_id: str) -> list[TimelineEntry]:
        t = self._read()
        sends = {r.send.message_id: r.send for r in t.pending.values() if r.send.conv_id == conv_id}
        return [
            TimelineEntry(
                type=item.type,
                ts=item.ts,
                message=t.messages[item.message_id] if item.message_id is not None else None,
                waited_ms=item.waited_ms,
                label=item.label,
                delivery=_delivery(sends.get(item.message_id)) if item.message_id else None,
            )
            for item in t.timeline.get(conv_id, ())
        ]

    async def conversation_by_message_ids(
        self, identity_id: str, headers: list[str]
    ) -> Conversation | None:
        t = self._read()
        found: dict[str, Conversation] = {}
        for message in t.messages.values():
            conversation = t.conversations[message.conv_id]
            if conversation.identity_id == identity_id and message.message_id_header in headers:
                found[message.message_id_header] = conversation
        # The first header (newest ancestor first) that is one of the identity's messages.
        return next((found[h] for h in headers if h in found), None)

    async def message_by_header(self, identity_id: str, header: str) -> Message | None:
        t = self._read()
        return next(
            (
                m
                for m in t.messages.values()
                if m.message_id_header == header
                and t.conversations[m.conv_id].identity_id == identity_id
            ),
            None,
        )

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
    ) -> list[Conversation]:
        def wanted(c: Conversation) -> bool:
            return (
                c.identity_id == identity_id
                and (archived is None or c.archived is archived)
                and (correspondent is None or c.correspondent == correspondent)
                and (domain is None or _in_domain(domain_of(c.correspondent), domain))
                and (since is None or c.last_event_at >= since)
                and (until is None or c.last_event_at <= until)
                # Keyset paging on (last_event_at, id), both descending.
                and (after is None or (c.last_event_at, c.id) < after)
            )

        rows = [c for c in self._read().conversations.values() if wanted(c)]
        rows.sort(key=lambda c: (c.last_event_at, c.id), reverse=True)
        return rows[:limit]

    async def labelled_conversations(self, identity_id: str) -> list[LabelledConversation]:
        t = self._read()
        replied = {m.conv_id for m in t.messages.values() if m.direction is Direction.INBOUND}
        return [
            LabelledConversation(c.labels, c.id in replied, c.last_no_reply_at is not None)
            for c in t.conversations.values()
            if c.identity_id == identity_id and c.labels
        ]

    # -- events -----------------------------------------------------------------------

    async def append_events(
        self, identity: Identity, events: list[NewEvent], at: int
    ) -> list[Event]:
        if not events:
            return []
        t = self._write()
        # The counter is the stored row's, not the caller's copy of it.
        stored = await self.lock_identity(identity.id)
        ids = [new_event_id(at) for _ in events]
        appended = stored_events(identity, events, at, ids, stored.last_seq + len(events))
        t.identities[identity.id] = replace(stored, last_seq=appended[-1].seq)
        t.events[identity.id] = (*t.events.get(identity.id, ()), *appended)
        return appended

    async def events_after(
        self, identity: Identity, since: int, types: tuple[str, ...], limit: int
    ) -> list[Event]:
        log = self._read().events.get(identity.id, ())
        found = [e for e in log if e.seq > since and (not types or e.type in types)]
        # Events carry the handle of the identity they were read for, as the SQL join does.
        return [replace(e, handle=identity.handle) for e in found[:limit]]

    async def head_seqs(self, identity_ids: list[str]) -> dict[str, int]:
        identities = self._read().identities
        return {i: identities[i].last_seq for i in identity_ids if i in identities}

    # -- delivery -----------------------------------------------------------------------

    async def claim_due(self, now: int, lease_until: int, limit: int) -> list[OutgoingMessage]:
        t = self._write()

        def due(row: PendingRow) -> bool:
            status = row.send.status
            if status is PendingStatus.QUEUED:
                return row.send.dispatch_at <= now
            # A claim whose lease ran out (its dispatcher died) is taken over.
            return (
                status is PendingStatus.SENDING
                and row.lease_until is not None
                and row.lease_until < now
            )

        rows = sorted(
            (row for row in t.pending.values() if due(row)),
            key=lambda row: (row.send.dispatch_at, row.send.id),
        )[:limit]
        claimed = []
        for row in rows:
            send = replace(row.send, status=PendingStatus.SENDING, attempts=row.send.attempts + 1)
            t.pending[send.id] = replace(row, send=send, lease_until=lease_until)
            claimed.append(self._outgoing(t, send))
        return claimed

    @staticmethod
    def _outgoing(t: Tables, send: PendingSend) -> OutgoingMessage:
        message = t.messages[send.message_id]
        return OutgoingMessage(
            pending_id=send.id,
            identity_id=send.identity_id,
            handle=t.identities[send.identity_id].handle,
            conv_id=send.conv_id,
            message_id=message.id,
            mailbox=t.mailboxes[send.mailbox_id],
            recipient=send.recipient,
            subject=message.subject,
            text=message.text,
            html=message.html,
            message_id_header=message.message_id_header,
            in_reply_to=message.in_reply_to,
            references=message.references,
            attempt=send.attempts,
        )

    def _finish(
        self,
        pending_id: str,
        attempt: int,
        status: PendingStatus,
        *,
        dispatch_at: int | None = None,
        error: str | None = None,
        sent_at: int | None = None,
    ) -> bool:
        """Apply an outcome only if this claim still holds the row."""
        t = self._write()
        row = t.pending.get(pending_id)
        if row is None or row.send.status is not PendingStatus.SENDING:
            return False
        if row.send.attempts != attempt:
            return False
        send = replace(row.send, status=status)
        if dispatch_at is not None:
            send = replace(send, dispatch_at=dispatch_at)
        t.pending[pending_id] = replace(
            row,
            send=send,
            lease_until=None,
            last_error=error[:MAX_ERROR_CHARS] if error is not None else row.last_error,
            sent_at=sent_at if sent_at is not None else row.sent_at,
        )
        return True

    async def finish_sent(self, pending_id: str, attempt: int, at: int) -> bool:
        return self._finish(pending_id, attempt, PendingStatus.SENT, sent_at=at)

    async def finish_failed(self, pending_id: str, attempt: int, error: str) -> bool:
        return self._finish(pending_id, attempt, PendingStatus.FAILED, error=error)

    async def retry_later(self, pending_id: str, attempt: int, at: int, error: str) -> bool:
        return self._finish(pending_id, attempt, PendingStatus.QUEUED, dispatch_at=at, error=error)

    async def count_delivery(self, mailbox_id: str, day: str) -> None:
        self._bump_usage(mailbox_id, day, lambda u: replace(u, delivered=u.delivered + 1))

    def _bump_usage(
        self, mailbox_id: str, day: str, bump: Callable[[MailboxUsage], MailboxUsage]
    ) -> None:
        t = self._write()
        _require(mailbox_id in t.mailboxes, f"no mailbox {mailbox_id}")
        t.mailbox_usage[mailbox_id, day] = bump(
            t.mailbox_usage.get((mailbox_id, day), MailboxUsage())
        )

    async def lock_mailbox_health(self, mailbox_id: str) -> int:
        mailbox = self._read().mailboxes.get(mailbox_id)
        if mailbox is None:
            raise LookupError(f"mailbox {mailbox_id} vanished")
        return mailbox.health

    async def record_health_hit(self, mailbox_id: str, health: int, day: str) -> None:
        self._change(self._write().mailboxes, mailbox_id, lambda m: replace(m, health=health))
        self._bump_usage(mailbox_id, day, lambda u: replace(u, hits=u.hits + 1))

    async def contacts_pinned_to(self, mailbox_id: str) -> list[str]:
        contacts = self._read().contacts.values()
        return sorted(c.address for c in contacts if c.pinned_mailbox_id == mailbox_id)

    async def move_pins(self, dead_id: str, assignments: dict[str, str]) -> None:
        t = self._write()
        for address, mailbox_id in assignments.items():
            self._move_pin(t, dead_id, address, mailbox_id)

    def _move_pin(self, t: Tables, dead_id: str, address: str, mailbox_id: str) -> None:
        """One recipient's contact, conversations and queued sends onto `mailbox_id`."""
        moved = [
            *_update_where(
                t.contacts,
                lambda c: c.pinned_mailbox_id == dead_id and c.address == address,
                lambda c: replace(c, pinned_mailbox_id=mailbox_id),
            ),
            *_update_where(
                t.conversations,
                lambda c: c.mailbox_id == dead_id and c.correspondent == address,
                lambda c: replace(c, mailbox_id=mailbox_id),
            ),
            *_update_where(
                t.pending,
                lambda p: (
                    p.send.mailbox_id == dead_id
                    and p.send.recipient == address
                    and p.send.status is PendingStatus.QUEUED
                ),
                lambda p: replace(p, send=replace(p.send, mailbox_id=mailbox_id)),
            ),
        ]
        if moved:  # the schema checks the new reference only on rows it changes
            self._require_mailbox(t, mailbox_id)

    async def cancel_queued(
        self,
        *,
        mailbox_id: str | None = None,
        identity_ids: list[str] | None = None,
        recipient: str | None = None,
        pending_id: str | None = None,
    ) -> list[CancelledSend]:
        t = self._write()

        def matches(send: PendingSend) -> bool:
            return (
                send.status is PendingStatus.QUEUED
                and (mailbox_id is None or send.mailbox_id == mailbox_id)
                and (identity_ids is None or send.identity_id in identity_ids)
                and (recipient is None or send.recipient == recipient)
                and (pending_id is None or send.id == pending_id)
            )

        cancelled = sorted(
            (row.send for row in t.pending.values() if matches(row.send)), key=lambda s: s.id
        )
        for send in cancelled:
            t.pending[send.id] = replace(
                t.pending[send.id], send=replace(send, status=PendingStatus.CANCELLED)
            )
        return [CancelledSend(s.id, s.identity_id, s.conv_id, s.recipient) for s in cancelled]

    async def pending_status(self, pending_id: str) -> PendingStatus | None:
        row = self._read().pending.get(pending_id)
        return None if row is None else row.send.status

    async def pending_ref(self, pending_id: str) -> PendingRef | None:
        row = self._read().pending.get(pending_id)
        if row is None:
            return None
        send = row.send
        return PendingRef(send.id, send.identity_id, send.conv_id, send.recipient, send.status)

    async def due_no_reply(self, now: int, limit: int, *, lock: bool) -> list[Conversation]:
        due = [
            c
            for c in self._read().conversations.values()
            if c.no_reply_at is not None and c.no_reply_at <= now
        ]
        due.sort(key=lambda c: (c.no_reply_at or 0, c.id))
        return due[:limit]

    async def mailboxes_to_close(self, today: str) -> list[Mailbox]:
        yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
        open_days = [
            m
            for m in self._read().mailboxes.values()
            if m.closed_through is None or m.closed_through < yesterday
        ]
        # The SQL store does not order these; callers must not depend on an order.
        return sorted(open_days, key=lambda m: (m.created_at, m.id))

    async def mailbox_days(
        self, mailbox_id: str, after: str | None, before: str
    ) -> list[MailboxDay]:
        days = [
            MailboxDay(day, usage.delivered, usage.hits)
            for (owner, day), usage in self._read().mailbox_usage.items()
            if owner == mailbox_id and day < before and (after is None or day > after)
        ]
        return sorted(days, key=lambda d: d.day)

    async def set_warmup(
        self, mailbox_id: str, stage: int, qualifying_days: int, health: int, closed_through: str
    ) -> None:
        self._change(
            self._write().mailboxes,
            mailbox_id,
            lambda m: replace(
                m,
                warmup_stage=stage,
                qualifying_days=qualifying_days,
                health=health,
                closed_through=closed_through,
            ),
        )

    # -- webhooks -----------------------------------------------------------------------

    async def add_webhook(self, endpoint: WebhookEndpoint) -> None:
        t = self._write()
        _require(endpoint.id not in t.webhooks, f"webhook {endpoint.id} exists")
        _require(endpoint.org_id in t.orgs, f"no org {endpoint.org_id}")
        _require(
            all(w.org_id != endpoint.org_id for w in t.webhooks.values()),
            f"org {endpoint.org_id} has a webhook",
        )
        t.webhooks[endpoint.id] = endpoint

    async def webhook_of_org(self, org_id: str) -> WebhookEndpoint | None:
        return next((w for w in self._read().webhooks.values() if w.org_id == org_id), None)

    async def webhook_by_id(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self._read().webhooks.get(endpoint_id)

    async def set_webhook_url(self, endpoint_id: str, url: str) -> None:
        self._change(self._write().webhooks, endpoint_id, lambda w: replace(w, url=url))

    async def set_webhook_secret(self, endpoint_id: str, secret: str) -> None:
        self._change(self._write().webhooks, endpoint_id, lambda w: replace(w, secret=secret))

    async def pause_webhook(self, endpoint_id: str, reason: PauseReason, at: int) -> None:
        self._change(
            self._write().webhooks,
            endpoint_id,
            lambda w: replace(w, status=EndpointStatus.PAUSED, paused_reason=reason, paused_at=at),
        )

    async def enable_webhook(self, endpoint_id: str) -> None:
        self._change(
            self._write().webhooks,
            endpoint_id,
            lambda w: replace(
                w,
                status=EndpointStatus.ACTIVE,
                paused_reason=None,
                paused_at=None,
                failed_deliveries=0,
            ),
        )

    async def set_webhook_failures(self, endpoint_id: str, failures: int) -> None:
        self._change(
            self._write().webhooks, endpoint_id, lambda w: replace(w, failed_deliveries=failures)
        )

    async def webhook_cursors(self, endpoint_id: str) -> dict[str, int]:
        return {
            identity_id: seq
            for (endpoint, identity_id), seq in self._read().webhook_cursors.items()
            if endpoint == endpoint_id
        }

    async def set_webhook_cursors(self, endpoint_id: str, cursors: dict[str, int]) -> None:
        t = self._write()
        for identity_id, seq in cursors.items():
            _require(endpoint_id in t.webhooks, f"no webhook {endpoint_id}")
            _require(identity_id in t.identities, f"no identity {identity_id}")
            t.webhook_cursors[(endpoint_id, identity_id)] = seq

    async def claim_webhooks(
        self, owner: str, now: int, lease_until: int, limit: int
    ) -> list[WebhookEndpoint]:
        t = self._write()
        free = sorted(
            (
                w
                for w in t.webhooks.values()
                if w.status is EndpointStatus.ACTIVE
                and (w.lease_owner is None or w.lease_until is None or w.lease_until < now)
            ),
            key=lambda w: w.id,
        )[:limit]
        claimed = [replace(w, lease_owner=owner, lease_until=lease_until) for w in free]
        for w in claimed:
            t.webhooks[w.id] = w
        return claimed

    async def renew_webhook_lease(
        self, endpoint_id: str, owner: str, lease_until: int
    ) -> WebhookEndpoint | None:
        t = self._write()
        held = t.webhooks.get(endpoint_id)
        if held is None or held.lease_owner != owner:
            return None
        t.webhooks[endpoint_id] = renewed = replace(held, lease_until=lease_until)
        return renewed

    async def release_webhook_lease(self, endpoint_id: str, owner: str) -> None:
        _update_where(
            self._write().webhooks,
            lambda w: w.id == endpoint_id and w.lease_owner == owner,
            lambda w: replace(w, lease_owner=None, lease_until=None),
        )

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _change(table: dict[K, V], key: K, change: Callable[[V], V]) -> None:
        """UPDATE … WHERE key = …: a missing row is no error, it changes nothing."""
        if key in table:
            table[key] = change(table[key])

    @staticmethod
    def _require_mailbox(t: Tables, mailbox_id: str | None) -> None:
        _require(mailbox_id is None or mailbox_id in t.mailboxes, f"no mailbox {mailbox_id}")

    @staticmethod
    def _require_conversation_refs(t: Tables, conversation: Conversation) -> None:
        _require(
            conversation.identity_id in t.identities, f"no identity {conversation.identity_id}"
        )
        _require(conversation.mailbox_id in t.mailboxes, f"no mailbox {conversation.mailbox_id}")


def _in_domain(correspondent_domain: str, domain: str) -> bool:
    """The domain itself or any subdomain of it."""
    return correspondent_domain == domain or correspondent_domain.endswith("." + domain)


class MemoryStore:
    """Units of work on in-memory tables; see the module comment."""

    def __init__(self) -> None:
        self._committed = Tables()
        self._writer = asyncio.Lock()

    @property
    def committed(self) -> Tables:
        """What has been committed, for synchronous looks from tests (e.g. from an
        EventListener, to see that it runs after the commit). Do not change it."""
        return self._committed

    @asynccontextmanager
    async def read(self) -> AsyncIterator[MemoryTx]:
        tx = MemoryTx(lambda: self._committed, writable=False)
        try:
            yield tx
        finally:
            tx.close()

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[MemoryTx]:
        # A snapshot is at least as good as statements each on their own.
        async with self.read() as tx:
            yield tx

    @asynccontextmanager
    async def write(self, *, lock_timeout_s: float | None = None) -> AsyncIterator[MemoryTx]:
        try:
            async with asyncio.timeout(lock_timeout_s):
                await self._writer.acquire()
        except TimeoutError:
            raise WriteLockTimeout() from None
        tx = MemoryTx(lambda: self._committed, writable=True)
        try:
            yield tx
            # Only a clean exit gets here: an exception skips the adoption.
            if tx.changed is not None:
                self._committed = tx.changed
        finally:
            tx.close()
            self._writer.release()


# The protocols are structural: these assignments make mypy check conformance.
_tx: type[Tx] = MemoryTx
_store: type[Store] = MemoryStore
