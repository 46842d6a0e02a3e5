"""Inbound mail: replies thread onto conversations, other mail opens one, and delivery
status notifications are bounces (with do-not-contact and health consequences)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mailpool_server.service.addresses import normalize
from mailpool_server.service.clock import Clock, now_ms, utc_day
from mailpool_server.service.event_log import EventsByIdentity, announce, append_all, merge
from mailpool_server.service.events import (
    BounceKind,
    CancelReason,
    EmailBounced,
    EmailCancelled,
    NewEvent,
    inbound,
)
from mailpool_server.service.health import hit
from mailpool_server.service.ids import new_id
from mailpool_server.service.models import (
    Contact,
    Conversation,
    Direction,
    Identity,
    Message,
    TimelineEntry,
    TimelineType,
)
from mailpool_server.service.observe import NO_OBSERVER, Observer
from mailpool_server.service.policy import HealthHit
from mailpool_server.service.ports import EventListener, Store, Tx
from mailpool_server.service.threading import references_after, snippet


@dataclass(frozen=True)
class DeliveryReport:
    """The per-recipient part of an RFC 3464 report."""

    recipient: str
    status: str  # "5.1.1"
    diagnostic: str
    original_message_id: str | None

    @property
    def hard(self) -> bool:
        return self.status.startswith("5")


@dataclass(frozen=True)
class InboundMail:
    mailbox_email: str  # the envelope recipient: one of our mailboxes
    from_address: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    html: str
    message_id_header: str
    in_reply_to: str | None
    references: tuple[str, ...]
    report: DeliveryReport | None = None


class Inbound:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        listener: EventListener,
        *,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self._observer = observer
        self._store = store
        self._clock = clock
        self._listener = listener

    async def accepts(self, address: str) -> bool:
        """True for addresses of known mailboxes (anything else is refused at RCPT)."""
        async with self._store.read() as tx:
            return await tx.mailbox_by_email(normalize(address)) is not None

    async def receive(self, mail: InboundMail) -> None:
        now = now_ms(self._clock)
        async with self._store.write() as tx:
            mailbox = await tx.mailbox_by_email(normalize(mail.mailbox_email))
            if mailbox is None:
                return  # removed between RCPT and DATA: nothing to attach it to
            identity = await tx.lock_identity(mailbox.identity_id)  # lock order: identity first
            if mail.report is not None:
                events = await self._bounce(tx, mail.report, identity, now)
                kind = "bounce_hard" if mail.report.hard else "bounce_soft"
            else:
                event, kind = await self._message(tx, mail, mailbox.id, mailbox.identity_id, now)
                events = {mailbox.identity_id: [event]}
            heads = await append_all(tx, events, now, locked=identity)
        announce(self._listener, heads)
        self._observer.inbound(kind)

    async def _message(
        self, tx: Tx, mail: InboundMail, mailbox_id: str, identity_id: str, now: int
    ) -> tuple[NewEvent, str]:
        """The stored message's event, and its kind: reply (threads onto a
        conversation) or new."""
        sender = normalize(mail.from_address)
        chain = [h for h in (mail.in_reply_to, *reversed(mail.references)) if h]
        conversation = await tx.conversation_by_message_ids(identity_id, chain)
        conv_id = conversation.id if conversation else new_id("conv")
        message = Message(
            id=new_id("msg"),
            conv_id=conv_id,
            direction=Direction.INBOUND,
            message_id_header=mail.message_id_header,
            from_address=sender,
            to=mail.to,
            cc=mail.cc,
            subject=mail.subject,
            text=mail.text,
            html=mail.html,
            snippet=snippet(mail.text, mail.html),
            ts=now,
            in_reply_to=mail.in_reply_to,
            references=mail.references,
        )
        if conversation is None:
            await tx.add_conversation(
                Conversation(
                    id=conv_id,
                    identity_id=identity_id,
                    correspondent=sender,
                    mailbox_id=mailbox_id,
                    subject=mail.subject,
                    snippet=message.snippet,
                    message_count=1,
                    archived=False,
                    labels=(),
                    created_at=now,
                    last_event_at=now,
                    last_message_id_header=mail.message_id_header,
                    references=references_after(mail.references, mail.message_id_header),
                )
            )
        else:
            # A reply cancels the armed no-reply timer (silently); a new outbound re-arms it.
            await tx.update_conversation(
                replace(
                    conversation,
                    snippet=message.snippet,
                    message_count=conversation.message_count + 1,
                    last_event_at=now,
                    last_message_id_header=mail.message_id_header,
                    references=references_after(conversation.references, mail.message_id_header),
                    no_reply_at=None,
                )
            )
        await tx.add_message(message)
        await tx.add_timeline(conv_id, TimelineEntry(TimelineType.MESSAGE, now, message))
        # Any mail from them counts as a reply for classification: they are warm now.
        contact = (await tx.contacts_among(identity_id, [sender])).get(sender)
        await tx.save_contact(
            Contact(
                identity_id=identity_id,
                address=sender,
                pinned_mailbox_id=contact.pinned_mailbox_id if contact else mailbox_id,
                outbound_count=contact.outbound_count if contact else 0,
                outbounds_since_reply=0,
                last_reply_at=now,
            )
        )
        threaded = conversation is not None
        return inbound(message, threaded=threaded), "reply" if threaded else "new"

    async def _bounce(
        self, tx: Tx, report: DeliveryReport, identity: Identity, now: int
    ) -> EventsByIdentity:
        identity_id = identity.id
        recipient = normalize(report.recipient)
        original = None
        if report.original_message_id:
            original = await tx.message_by_header(identity_id, report.original_message_id)
        conv_id = original.conv_id if original else None
        kind = BounceKind.HARD if report.hard else BounceKind.SOFT
        bounced = EmailBounced(recipient, kind, report.status, report.diagnostic)
        events: EventsByIdentity = {identity_id: [NewEvent(conv_id, bounced)]}
        sender = await tx.mailbox_by_email(original.from_address) if original else None
        if sender is not None:
            what = HealthHit.HARD_BOUNCE if report.hard else HealthHit.SOFT_BOUNCE
            merge(events, await hit(tx, sender, what, utc_day(now)))
        if report.hard:
            await tx.add_do_not_contact(identity.org_id, recipient, "hard_bounce", now)
            org_identities = [i.id for i in await tx.identities_of(identity.org_id, "", 1_000_000)]
            for cancelled in await tx.cancel_queued(
                identity_ids=org_identities, recipient=recipient
            ):
                reason = CancelReason.DO_NOT_CONTACT
                events.setdefault(cancelled.identity_id, []).append(
                    NewEvent(
                        cancelled.conv_id,
                        EmailCancelled(cancelled.pending_id, cancelled.recipient, reason),
                    )
                )
        return events
