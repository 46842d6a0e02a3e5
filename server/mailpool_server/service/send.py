"""The send use case: classify, cap, pick and queue every recipient in one transaction."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mailpool_server.service.addresses import is_deliverable, normalize
from mailpool_server.service.auth import identity_in_org, owned_by
from mailpool_server.service.clock import MS_PER_DAY, Clock, next_midnight_ms, now_ms, utc_day
from mailpool_server.service.errors import (
    AllRecipientsRejected,
    ConversationNotFound,
    ErrorReason,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    PendingSendNotFound,
    SendAlreadyDispatched,
)
from mailpool_server.service.event_log import announce, append_all
from mailpool_server.service.events import CancelReason, EmailCancelled, EmailQueued, NewEvent
from mailpool_server.service.ids import new_id
from mailpool_server.service.models import (
    Affinity,
    Contact,
    Conversation,
    Direction,
    Identity,
    IdentityState,
    MailboxRef,
    Message,
    PendingSend,
    PendingStatus,
    QueuedRecipient,
    RecipientOutcome,
    RecipientStatus,
    RejectReason,
    SendClass,
    SendResult,
    TimelineEntry,
    TimelineType,
)
from mailpool_server.service.observe import NO_OBSERVER, Observer
from mailpool_server.service.pacing import next_working_time
from mailpool_server.service.picker import Candidate, classify, pick
from mailpool_server.service.policy import Tier, tier_policy
from mailpool_server.service.ports import (
    EventListener,
    IdempotencyRecord,
    MailboxCount,
    Outbound,
    PendingRef,
    SendTally,
    Store,
    Tx,
    WriteLockTimeout,
)
from mailpool_server.service.send_request import SendCommand, ValidSend, validate
from mailpool_server.service.threading import (
    new_message_id,
    references_after,
    reply_subject,
    snippet,
)

IDEMPOTENCY_LIFETIME_MS = MS_PER_DAY
# A duplicate waits this long for the first request with its key, then gets 409 in use.
IDEMPOTENCY_WAIT_S = 10.0
DEFAULT_COLD_GAP_MS = 60_000

_STATE_REJECTIONS = {
    IdentityState.PROVISIONING: RejectReason.INACTIVE,
    IdentityState.SUSPENDED: RejectReason.SUSPENDED,
}


@dataclass(frozen=True)
class SendOutcome:
    result: SendResult
    replayed: bool
    tier: Tier | None = None  # of the identity, for metrics (None on a replay)


def _replay(record: IdempotencyRecord, fingerprint: str) -> SendOutcome:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if record.result is None:  # claimed, not committed: the first is still running
        raise IdempotencyKeyInUse()
    return SendOutcome(record.result, replayed=True)


@dataclass
class _Placement:
    """What one send has placed so far, inside its transaction."""

    identity: Identity
    now: int
    cap: int
    remaining: int
    conversation: Conversation | None
    candidates: list[Candidate]
    by_id: dict[str, Candidate]
    cold_next_at: dict[str, int]
    per_mailbox: Counter[str]
    outcomes: list[RecipientOutcome]
    outbounds: list[Outbound]  # each queued recipient's rows, written by finish_send
    events: list[NewEvent]

    def tally(self, key: str | None, result: SendResult) -> SendTally:
        """What the send writes once placed: its counts against the caps (and the cold
        slots it moved), its events and, under its key, its result."""
        mailboxes = []
        for mailbox_id, count in self.per_mailbox.items():
            mailbox, cold_next = self.by_id[mailbox_id], self.cold_next_at[mailbox_id]
            moved = cold_next if cold_next != mailbox.cold_next_at else None
            mailboxes.append(MailboxCount(mailbox_id, count, mailbox.daily_cap, moved))
        return SendTally(
            outbounds=self.outbounds,
            identity=self.identity,
            day=utc_day(self.now),
            count=result.accepted,
            cap=self.cap,
            mailboxes=mailboxes,
            events=self.events,
            at=self.now,
            key=key,
            result=result,
        )

    def result(self) -> SendResult:
        queued = sum(o.status is RecipientStatus.QUEUED for o in self.outcomes)
        return SendResult(
            identity=self.identity.handle,
            accepted=queued,
            rejected=len(self.outcomes) - queued,
            remaining=max(0, self.remaining),
            results=tuple(self.outcomes),
        )


def _start(
    identity: Identity,
    used: int,
    conversation: Conversation | None,
    now: int,
    candidates: list[Candidate],
) -> _Placement:
    """A placement with nothing placed yet: the cap left today (`used`: the identity's
    sends accepted today), the reply's conversation, and the picker's candidates."""
    cap = tier_policy(identity.tier).daily_cap
    return _Placement(
        identity=identity,
        now=now,
        cap=cap,
        remaining=cap - used,
        conversation=conversation,
        candidates=candidates,
        by_id={c.mailbox_id: c for c in candidates},
        cold_next_at={c.mailbox_id: c.cold_next_at for c in candidates},
        per_mailbox=Counter(),
        outcomes=[],
        outbounds=[],
        events=[],
    )


@dataclass(frozen=True)
class _Thread:
    """Where one outbound message goes in its conversation."""

    conv_id: str
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]
    labels_before: tuple[str, ...]


class Sender:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        listener: EventListener,
        *,
        cold_gap_ms: int = DEFAULT_COLD_GAP_MS,
        idempotency_wait_s: float = IDEMPOTENCY_WAIT_S,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self._observer = observer
        self._store = store
        self._clock = clock
        self._listener = listener
        self._cold_gap_ms = cold_gap_ms
        self._idempotency_wait_s = idempotency_wait_s

    async def cancel(self, org_id: str, handle: str, pending_id: str) -> tuple[str, PendingRef]:
        """Cancel a queued send (email.cancelled, reason admin); return the identity's
        handle and the send. A cancelled one is a no-op answered alike; one a dispatcher
        claimed is SendAlreadyDispatched."""
        now = now_ms(self._clock)
        heads: dict[str, int] = {}
        async with self._store.write() as tx:
            identity = await identity_in_org(tx, org_id, handle, lock=True)
            ref = await tx.pending_ref(pending_id)
            if ref is None or ref.identity_id != identity.id:
                raise PendingSendNotFound(pending_id)
            if ref.status is PendingStatus.QUEUED:
                # Conditional on QUEUED: a dispatcher may claim it meanwhile (PostgreSQL).
                if await tx.cancel_queued(pending_id=pending_id, identity_ids=[identity.id]):
                    event = EmailCancelled(pending_id, ref.recipient, CancelReason.ADMIN)
                    heads = await append_all(
                        tx, {identity.id: [NewEvent(ref.conv_id, event)]}, now, locked=identity
                    )
                else:
                    ref = await tx.pending_ref(pending_id)
                    assert ref is not None
            if ref.status not in (PendingStatus.QUEUED, PendingStatus.CANCELLED):
                raise SendAlreadyDispatched(pending_id, ref.status.value)
        announce(self._listener, heads)
        return identity.handle, ref

    async def send(
        self, org_id: str, command: SendCommand, *, request_id: str | None = None
    ) -> SendOutcome:
        """Queue a send. Raises AllRecipientsRejected when nothing was queued (and
        then nothing is stored, so a retry with the same key may succeed later).
        `request_id` (the call's, for the logs) is kept with each queued row, so the
        dispatcher that delivers it logs the id of the request that queued it."""
        try:
            outcome = await self._send(org_id, command, request_id)
        except AllRecipientsRejected as rejected:
            if rejected.tier is not None:
                self._observer.send_decided(rejected.tier, rejected.result)
            raise
        if outcome.replayed:
            self._observer.send_replayed()
        elif outcome.tier is not None:
            self._observer.send_decided(outcome.tier, outcome.result)
        return outcome

    async def _send(self, org_id: str, command: SendCommand, request_id: str | None) -> SendOutcome:
        valid = validate(command)
        key = command.idempotency_key
        fingerprint = command.fingerprint() if key else ""
        now = now_ms(self._clock)
        if key:
            # Replays are answered from one SELECT, without queueing for the write
            # lock. A record whose fingerprint matches was made by this org for this
            # very request (the handle is part of it), so the identity needs no
            # second look; for a reused key, an unknown identity is reported first.
            async with self._store.lookup() as tx:
                record = await tx.idempotency_record(org_id, key, now)
                if record is not None and record.fingerprint != fingerprint:
                    await identity_in_org(tx, org_id, command.identity)
            if record is not None:
                return _replay(record, fingerprint)
        try:
            async with self._store.write(
                lock_timeout_s=self._idempotency_wait_s if key else None
            ) as tx:
                if key:
                    claim = await tx.claim_for_send(
                        org_id,
                        key,
                        fingerprint,
                        now,
                        now + IDEMPOTENCY_LIFETIME_MS,
                        normalize(command.identity),
                    )
                    if claim.existing is not None:  # committed since the lookup above
                        if claim.existing.fingerprint != fingerprint:  # as in the lookup
                            await identity_in_org(tx, org_id, command.identity)
                        return _replay(claim.existing, fingerprint)
                    identity = owned_by(claim.identity, org_id, command.identity)
                else:
                    identity = await identity_in_org(tx, org_id, command.identity, lock=True)
                placement = await self._place(tx, identity, valid, now, request_id)
                result = placement.result()
                if result.accepted == 0:
                    rejected = _all_rejected(result, now)
                    rejected.tier = identity.tier
                    raise rejected  # rolls the claim back too
                head = await tx.finish_send(placement.tally(key, result))
                # Under the identity lock no counter can refuse; if one does, the
                # counters and the placement disagree, and the whole send must roll
                # back rather than oversend.
                if head is None:
                    raise RuntimeError("a cap counter refused a placement")
        except WriteLockTimeout:
            raise IdempotencyKeyInUse() from None
        announce(self._listener, {identity.id: head})
        return SendOutcome(result, replayed=False, tier=identity.tier)

    async def _place(
        self,
        tx: Tx,
        identity: Identity,
        valid: ValidSend,
        now: int,
        request_id: str | None,
    ) -> _Placement:
        """Decide every recipient in request order: reject it with a reason, or pick a
        mailbox and queue it. The caller holds the identity's lock."""
        conversation = await self._conversation(tx, identity, valid)
        recipients = valid.recipients
        if conversation is not None:
            recipients = (conversation.correspondent,)
        addresses = [normalize(r) for r in recipients]
        deliverable = [a for a in addresses if is_deliverable(a)]
        # Read after the lock is held, in a statement of its own: on PostgreSQL a
        # statement that waited for the lock still reads other rows as of its start,
        # and would miss the usage the lock's last holder committed. A reply's
        # recipient is pinned to its conversation's mailbox; the others, to their
        # contacts' (the read finds those itself).
        pinned = (conversation.mailbox_id,) if conversation is not None and deliverable else ()
        known = await tx.send_context(
            identity.org_id,
            identity.id,
            utc_day(now),
            deliverable,
            want=len(deliverable),
            pinned=pinned,
        )
        blocked, contacts = known.blocked, known.contacts
        placement = _start(identity, known.used, conversation, now, known.candidates)
        state_reason = _STATE_REJECTIONS.get(identity.state)
        for given, address in zip(recipients, addresses, strict=True):
            reason = state_reason
            if reason is None and not is_deliverable(address):
                reason = RejectReason.INVALID_RECIPIENT
            elif reason is None and address in blocked:
                reason = RejectReason.DO_NOT_CONTACT
            elif reason is None and placement.remaining <= 0:
                reason = RejectReason.CAP_EXCEEDED
            contact = contacts.get(address)
            choice = None
            if reason is None:
                choice = pick(placement.candidates, _pinned(placement.conversation, contact))
                if choice is None:
                    reason = RejectReason.NO_ACCOUNTS
            if reason is not None or choice is None:
                placement.outcomes.append(RecipientOutcome(given, reason=reason))
                continue
            candidate, affinity = choice
            self._queue(placement, valid, given, address, contact, candidate, affinity, request_id)
        return placement

    async def _conversation(
        self, tx: Tx, identity: Identity, valid: ValidSend
    ) -> Conversation | None:
        """The conversation a reply continues (None for a new send)."""
        conv_id = valid.command.conv_id
        if conv_id is None:
            return None
        conversation = await tx.conversation_by_id(conv_id)
        if conversation is None or conversation.identity_id != identity.id:
            raise ConversationNotFound(conv_id)
        return conversation

    def _queue(
        self,
        placement: _Placement,
        valid: ValidSend,
        given: str,
        address: str,
        contact: Contact | None,
        candidate: Candidate,
        affinity: Affinity,
        request_id: str | None,
    ) -> None:
        """Queue one accepted recipient: count it, schedule it, and record its rows
        (message, conversation, queued row, contact), outcome and event."""
        candidate.remaining -= 1
        placement.remaining -= 1
        placement.per_mailbox[candidate.mailbox_id] += 1
        send_class = classify(contact)
        dispatch_at = self._schedule(placement, candidate.mailbox_id, send_class)
        thread = _thread_of(placement.conversation, valid.command)
        message = _outbound_message(thread, valid, candidate.email, address, placement.now)
        conversation, timeline = _conversation_after(placement, valid, thread, message, candidate)
        pending_id = new_id("psn")
        pending = PendingSend(
            id=pending_id,
            identity_id=placement.identity.id,
            conv_id=thread.conv_id,
            message_id=message.id,
            mailbox_id=candidate.mailbox_id,
            recipient=address,
            send_class=send_class,
            status=PendingStatus.QUEUED,
            dispatch_at=dispatch_at,
            created_at=placement.now,
            request_id=request_id,
        )
        placement.outbounds.append(
            Outbound(
                conversation,
                placement.conversation is None,
                message,
                timeline,
                pending,
                _contact_after_outbound(placement, address, contact, candidate),
            )
        )
        mailbox = MailboxRef(candidate.mailbox_id, candidate.email)
        placement.outcomes.append(
            RecipientOutcome(
                given,
                queued=QueuedRecipient(
                    pending_id, thread.conv_id, send_class, affinity, mailbox, dispatch_at
                ),
            )
        )
        placement.events.append(
            NewEvent(
                thread.conv_id,
                EmailQueued(pending_id, address, send_class, dispatch_at, mailbox),
            )
        )

    def _schedule(self, placement: _Placement, mailbox_id: str, send_class: SendClass) -> int:
        """When the send may go out: warm sends at once; cold ones at the mailbox's
        next cold slot inside the identity's working hours, which moves that slot on."""
        if send_class is SendClass.WARM:
            return placement.now
        identity = placement.identity
        dispatch_at = next_working_time(
            max(placement.now, placement.cold_next_at[mailbox_id]),
            identity.timezone,
            identity.work_start_min,
            identity.work_end_min,
        )
        placement.cold_next_at[mailbox_id] = dispatch_at + self._cold_gap_ms
        return dispatch_at


def _pinned(conversation: Conversation | None, contact: Contact | None) -> str | None:
    """The mailbox a recipient is pinned to: a reply's conversation's, else the contact's."""
    if conversation is not None:
        return conversation.mailbox_id
    return contact.pinned_mailbox_id if contact else None


def _thread_of(conversation: Conversation | None, command: SendCommand) -> _Thread:
    """A reply continues its conversation's thread; a new send starts one (optionally
    threaded onto mail sent elsewhere with in_reply_to / references)."""
    if conversation is not None:
        return _Thread(
            conversation.id,
            reply_subject(conversation.subject),
            conversation.last_message_id_header,
            conversation.references,
            conversation.labels,
        )
    references = command.references
    if command.in_reply_to is not None:
        references = references_after(references, command.in_reply_to)
    return _Thread(new_id("conv"), command.subject or "", command.in_reply_to, references, ())


def _outbound_message(
    thread: _Thread, valid: ValidSend, from_address: str, to: str, now: int
) -> Message:
    text, html = valid.command.text or "", valid.command.html or ""
    return Message(
        id=new_id("msg"),
        conv_id=thread.conv_id,
        direction=Direction.OUTBOUND,
        message_id_header=new_message_id(from_address),
        from_address=from_address,
        to=(to,),
        cc=(),
        subject=thread.subject,
        text=text,
        html=html,
        snippet=snippet(text, html),
        ts=now,
        in_reply_to=thread.in_reply_to,
        references=thread.references,
    )


def _conversation_after(
    placement: _Placement, valid: ValidSend, thread: _Thread, message: Message, candidate: Candidate
) -> tuple[Conversation, tuple[TimelineEntry, ...]]:
    """The conversation as this outbound message leaves it (new or updated), and the
    message's timeline items (the message, then each label it adds)."""
    now, conversation = placement.now, placement.conversation
    added_labels = tuple(
        dict.fromkeys(x for x in valid.command.labels if x not in thread.labels_before)
    )
    no_reply_after = valid.no_reply_after_ms or (
        conversation.no_reply_after_ms if conversation else None
    )
    updated = Conversation(
        id=thread.conv_id,
        identity_id=placement.identity.id,
        correspondent=message.to[0],
        mailbox_id=candidate.mailbox_id,
        subject=conversation.subject if conversation else thread.subject,
        snippet=message.snippet,
        message_count=(conversation.message_count if conversation else 0) + 1,
        archived=conversation.archived if conversation else False,
        labels=thread.labels_before + added_labels,
        created_at=conversation.created_at if conversation else now,
        last_event_at=now,
        last_message_id_header=message.message_id_header,
        references=references_after(thread.references, message.message_id_header),
        no_reply_after_ms=no_reply_after,
        # A new outbound (re-)arms the timer; it fires at most once per outbound.
        no_reply_at=now + no_reply_after if no_reply_after else None,
        last_no_reply_at=conversation.last_no_reply_at if conversation else None,
    )
    timeline = (
        TimelineEntry(TimelineType.MESSAGE, now, message),
        *(TimelineEntry(TimelineType.LABEL_ADDED, now, label=label) for label in added_labels),
    )
    return updated, timeline


def _contact_after_outbound(
    placement: _Placement, address: str, contact: Contact | None, candidate: Candidate
) -> Contact:
    """The first mailbox that sends to a recipient pins them; every outbound counts."""
    return Contact(
        identity_id=placement.identity.id,
        address=address,
        pinned_mailbox_id=candidate.mailbox_id,
        outbound_count=(contact.outbound_count if contact else 0) + 1,
        outbounds_since_reply=(contact.outbounds_since_reply if contact else 0) + 1,
        last_reply_at=contact.last_reply_at if contact else None,
    )


def _all_rejected(result: SendResult, now: int) -> AllRecipientsRejected:
    reasons = {o.reason for o in result.results}
    until_midnight = next_midnight_ms(now) - now
    if RejectReason.CAP_EXCEEDED in reasons:
        return AllRecipientsRejected(result, ErrorReason.CAP_EXCEEDED, until_midnight)
    if RejectReason.NO_ACCOUNTS in reasons:
        return AllRecipientsRejected(result, ErrorReason.NO_ACCOUNTS, until_midnight)
    return AllRecipientsRejected(result, ErrorReason.RECIPIENTS_REJECTED, None)


__all__ = ["SendCommand", "SendOutcome", "Sender"]
