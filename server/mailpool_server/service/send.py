"""The send use case: classify, cap, pick and queue every recipient in one transaction."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass

from mailpool_server.service.addresses import is_deliverable, normalize
from mailpool_server.service.auth import identity_in_org
from mailpool_server.service.clock import MS_PER_DAY, Clock, next_midnight_ms, now_ms, utc_day
from mailpool_server.service.errors import (
    AllRecipientsRejected,
    ConversationNotFound,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
)
from mailpool_server.service.events import NewEvent, email_queued
from mailpool_server.service.ids import new_id
from mailpool_server.service.models import (
    Affinity,
    Contact,
    Conversation,
    Direction,
    Identity,
    IdentityState,
    Mailbox,
    Message,
    PendingSend,
    RecipientOutcome,
    RejectReason,
    SendClass,
    SendResult,
    TimelineEntry,
)
from mailpool_server.service.pacing import next_working_time
from mailpool_server.service.picker import Candidate, classify, pick
from mailpool_server.service.policy import tier_policy
from mailpool_server.service.ports import (
    EventListener,
    IdempotencyRecord,
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


def result_to_json(result: SendResult) -> str:
    return json.dumps(dataclasses.asdict(result), separators=(",", ":"))


def result_from_json(raw: str) -> SendResult:
    data = json.loads(raw)
    outcomes = []
    for item in data.pop("results"):
        for name, kind in (
            ("reason", RejectReason),
            ("send_class", SendClass),
            ("affinity", Affinity),
        ):
            if item[name] is not None:
                item[name] = kind(item[name])
        outcomes.append(RecipientOutcome(**item))
    return SendResult(results=tuple(outcomes), **data)


def _replay(record: IdempotencyRecord, fingerprint: str) -> SendOutcome:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return SendOutcome(result_from_json(record.response), replayed=True)


@dataclass
class _Placement:
    """What one send has placed so far, inside its transaction."""

    identity: Identity
    now: int
    cap: int
    remaining: int
    candidates: list[Candidate]
    mailboxes: dict[str, Mailbox]
    cold_next_at: dict[str, int]
    per_mailbox: Counter[str]
    outcomes: list[RecipientOutcome]
    events: list[NewEvent]


class Sender:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        listener: EventListener,
        *,
        cold_gap_ms: int = DEFAULT_COLD_GAP_MS,
        idempotency_wait_s: float = IDEMPOTENCY_WAIT_S,
    ) -> None:
        self._store = store
        self._clock = clock
        self._listener = listener
        self._cold_gap_ms = cold_gap_ms
        self._idempotency_wait_s = idempotency_wait_s

    async def send(self, org_id: str, command: SendCommand) -> SendOutcome:
        """Queue a send. Raises AllRecipientsRejected when nothing was queued (and
        then nothing is stored, so a retry with the same key may succeed later)."""
        valid = validate(command)
        key = command.idempotency_key
        fingerprint = command.fingerprint() if key else ""
        now = now_ms(self._clock)
        if key:
            # Replays are answered from a read, without queueing for the write lock.
            async with self._store.read() as tx:
                await identity_in_org(tx, org_id, command.identity)
                record = await tx.idempotency_record(org_id, key, now)
            if record is not None:
                return _replay(record, fingerprint)
        try:
            async with self._store.write(
                lock_timeout_s=self._idempotency_wait_s if key else None
            ) as tx:
                if key:
                    existing = await tx.claim_idempotency_key(
                        org_id, key, fingerprint, now, now + IDEMPOTENCY_LIFETIME_MS
                    )
                    if existing is not None:
                        return _replay(existing, fingerprint)
                identity = await identity_in_org(tx, org_id, command.identity, lock=True)
                placement = await self._place(tx, identity, valid, now)
                result = SendResult(
                    identity=identity.handle,
                    accepted=sum(o.status == "queued" for o in placement.outcomes),
                    rejected=sum(o.status == "rejected" for o in placement.outcomes),
                    remaining=max(0, placement.remaining),
                    results=tuple(placement.outcomes),
                )
                if result.accepted == 0:
                    raise _all_rejected(result, now)  # rolls the claim back too
                appended = await tx.append_events(identity, placement.events, now)
                if key:
                    await tx.complete_idempotency_key(org_id, key, result_to_json(result))
        except WriteLockTimeout:
            raise IdempotencyKeyInUse() from None
        self._listener.events_committed(identity.id, appended[-1].seq)
        return SendOutcome(result, replayed=False)

    async def _place(self, tx: Tx, identity: Identity, valid: ValidSend, now: int) -> _Placement:
        day = utc_day(now)
        cap = tier_policy(identity.tier).daily_cap
        used = (await tx.identity_used([identity.id], day)).get(identity.id, 0)
        conversation = None
        recipients = valid.recipients
        if valid.command.conv_id is not None:
            conversation = await tx.conversation_by_id(valid.command.conv_id)
            if conversation is None or conversation.identity_id != identity.id:
                raise ConversationNotFound(valid.command.conv_id)
            recipients = (conversation.correspondent,)

        addresses = [normalize(r) for r in recipients]
        deliverable = [a for a in addresses if is_deliverable(a)]
        blocked = await tx.do_not_contact_among(identity.org_id, deliverable)
        contacts = await tx.contacts_among(identity.id, deliverable)
        mailboxes = await tx.mailboxes_of([identity.id])
        sent = await tx.mailboxes_sent([m.id for m in mailboxes], day)
        placement = _Placement(
            identity=identity,
            now=now,
            cap=cap,
            remaining=cap - used,
            candidates=[
                Candidate(
                    m.id,
                    m.email,
                    m.warmup_stage,
                    max(0, m.daily_cap - sent.get(m.id, 0)),
                    m.excluded,
                    order,
                )
                for order, m in enumerate(mailboxes)
            ],
            mailboxes={m.id: m for m in mailboxes},
            cold_next_at={m.id: m.cold_next_at for m in mailboxes},
            per_mailbox=Counter(),
            outcomes=[],
            events=[],
        )
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
                pinned = (
                    conversation.mailbox_id
                    if conversation
                    else (contact.pinned_mailbox_id if contact else None)
                )
                choice = pick(placement.candidates, pinned)
                if choice is None:
                    reason = RejectReason.NO_ACCOUNTS
            if reason is not None or choice is None:
                placement.outcomes.append(RecipientOutcome(given, "rejected", reason=reason))
                continue
            candidate, affinity = choice
            await self._queue(
                tx, placement, valid, given, address, contact, conversation, candidate, affinity
            )
        await self._commit_counters(tx, placement, day)
        return placement

    async def _queue(
        self,
        tx: Tx,
        placement: _Placement,
        valid: ValidSend,
        given: str,
        address: str,
        contact: Contact | None,
        conversation: Conversation | None,
        candidate: Candidate,
        affinity: Affinity,
    ) -> None:
        now, identity, command = placement.now, placement.identity, valid.command
        candidate.remaining -= 1
        placement.remaining -= 1
        placement.per_mailbox[candidate.mailbox_id] += 1
        send_class = classify(contact)
        dispatch_at = now
        if send_class is not SendClass.WARM:
            dispatch_at = next_working_time(
                max(now, placement.cold_next_at[candidate.mailbox_id]),
                identity.timezone,
                identity.work_start_min,
                identity.work_end_min,
            )
            placement.cold_next_at[candidate.mailbox_id] = dispatch_at + self._cold_gap_ms

        text, html = command.text or "", command.html or ""
        message_id_header = new_message_id(candidate.email)
        labels_before: tuple[str, ...] = ()
        if conversation is None:
            subject = command.subject or ""
            in_reply_to = command.in_reply_to
            references = command.references
            if in_reply_to is not None:
                references = references_after(references, in_reply_to)
            conv_id = new_id("conv")
        else:
            subject = reply_subject(conversation.subject)
            in_reply_to = conversation.last_message_id_header
            references = conversation.references
            conv_id, labels_before = conversation.id, conversation.labels
        message = Message(
            id=new_id("msg"),
            conv_id=conv_id,
            direction=Direction.OUTBOUND,
            message_id_header=message_id_header,
            from_address=candidate.email,
            to=(address,),
            cc=(),
            subject=subject,
            text=text,
            html=html,
            snippet=snippet(text, html),
            ts=now,
            in_reply_to=in_reply_to,
            references=references,
        )
        added_labels = tuple(
            dict.fromkeys(label for label in command.labels if label not in labels_before)
        )
        no_reply_after = valid.no_reply_after_ms or (
            conversation.no_reply_after_ms if conversation else None
        )
        updated = Conversation(
            id=conv_id,
            identity_id=identity.id,
            correspondent=address,
            mailbox_id=candidate.mailbox_id,
            subject=conversation.subject if conversation else subject,
            snippet=message.snippet,
            message_count=(conversation.message_count if conversation else 0) + 1,
            archived=conversation.archived if conversation else False,
            labels=labels_before + added_labels,
            created_at=conversation.created_at if conversation else now,
            last_event_at=now,
            last_message_id_header=message_id_header,
            references=references_after(references, message_id_header),
            no_reply_after_ms=no_reply_after,
            # A new outbound (re-)arms the timer; it fires at most once per outbound.
            no_reply_at=now + no_reply_after if no_reply_after else None,
            last_no_reply_at=conversation.last_no_reply_at if conversation else None,
        )
        if conversation is None:
            await tx.add_conversation(updated)
        else:
            await tx.update_conversation(updated)
        await tx.add_message(message)
        await tx.add_timeline(conv_id, TimelineEntry("message", now, {}, message))
        for label in added_labels:
            await tx.add_timeline(conv_id, TimelineEntry("label_added", now, {"label": label}))

        pending_id = new_id("psn")
        await tx.add_pending_send(
            PendingSend(
                id=pending_id,
                identity_id=identity.id,
                conv_id=conv_id,
                message_id=message.id,
                mailbox_id=candidate.mailbox_id,
                recipient=address,
                send_class=send_class,
                status="queued",
                dispatch_at=dispatch_at,
                created_at=now,
            )
        )
        await tx.save_contact(
            Contact(
                identity_id=identity.id,
                address=address,
                pinned_mailbox_id=candidate.mailbox_id,
                outbound_count=(contact.outbound_count if contact else 0) + 1,
                outbounds_since_reply=(contact.outbounds_since_reply if contact else 0) + 1,
                last_reply_at=contact.last_reply_at if contact else None,
            )
        )
        placement.outcomes.append(
            RecipientOutcome(
                to=given,
                status="queued",
                pending_id=pending_id,
                conv_id=conv_id,
                send_class=send_class,
                affinity=affinity,
                account_id=candidate.mailbox_id,
                account_email=candidate.email,
                dispatch_at=dispatch_at,
            )
        )
        placement.events.append(
            email_queued(
                conv_id=conv_id,
                pending_id=pending_id,
                recipient=address,
                send_class=send_class.value,
                dispatch_at=dispatch_at,
                mailbox_id=candidate.mailbox_id,
                mailbox_email=candidate.email,
            )
        )

    async def _commit_counters(self, tx: Tx, placement: _Placement, day: str) -> None:
        accepted = sum(placement.per_mailbox.values())
        if accepted == 0:
            return
        # Under the identity lock these cannot fail; if they do, the counters and the
        # placement disagree, and the whole send must roll back rather than oversend.
        if not await tx.add_identity_usage(placement.identity.id, day, accepted, placement.cap):
            raise RuntimeError("identity cap counter refused a placement")
        for mailbox_id, count in placement.per_mailbox.items():
            mailbox = placement.mailboxes[mailbox_id]
            if not await tx.add_mailbox_usage(mailbox_id, day, count, mailbox.daily_cap):
                raise RuntimeError("mailbox cap counter refused a placement")
            if placement.cold_next_at[mailbox_id] != mailbox.cold_next_at:
                await tx.set_mailbox_cold_next(mailbox_id, placement.cold_next_at[mailbox_id])


def _all_rejected(result: SendResult, now: int) -> AllRecipientsRejected:
    reasons = {o.reason for o in result.results}
    until_midnight = next_midnight_ms(now) - now
    if RejectReason.CAP_EXCEEDED in reasons:
        return AllRecipientsRejected(result, "CAP_EXCEEDED", until_midnight)
    if RejectReason.NO_ACCOUNTS in reasons:
        return AllRecipientsRejected(result, "NO_ACCOUNTS", until_midnight)
    return AllRecipientsRejected(result, "RECIPIENTS_REJECTED", None)


__all__ = ["SendCommand", "SendOutcome", "Sender"]
