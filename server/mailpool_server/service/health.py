"""Mailbox health in a transaction: penalties, and what happens when a mailbox dies."""

from __future__ import annotations

from itertools import cycle

from mailpool_server.service.event_log import EventsByIdentity
from mailpool_server.service.events import (
    CancelReason,
    EmailCancelled,
    MailboxReplaced,
    NewEvent,
)
from mailpool_server.service.models import Mailbox, MailboxRef
from mailpool_server.service.policy import HealthHit, apply_health_hit, is_excluded
from mailpool_server.service.ports import Tx


async def hit(tx: Tx, mailbox: Mailbox, what: HealthHit, day: str) -> EventsByIdentity:
    """Apply a penalty. If it takes the mailbox below the threshold, the mailbox is dead:
    its recipients (with their conversations and queued sends) move round-robin onto the
    healthy peers, healthiest first, and `mailbox.replaced` is appended; with no peer
    left its queued sends are cancelled (`no_accounts`). Returns events by identity id."""
    before = await tx.lock_mailbox_health(mailbox.id)
    after = apply_health_hit(before, what)
    await tx.record_health_hit(mailbox.id, after, day)
    if is_excluded(before) or not is_excluded(after):
        return {}
    peers = sorted(
        (
            m
            for m in await tx.mailboxes_of([mailbox.identity_id])
            if m.id != mailbox.id and not m.excluded
        ),
        key=lambda m: (-m.health, m.created_at),
    )
    events: EventsByIdentity = {}
    addresses = await tx.contacts_pinned_to(mailbox.id)
    replacement = None
    if peers:
        assignments = dict(zip(addresses, cycle(p.id for p in peers), strict=False))
        await tx.move_pins(mailbox.id, assignments)
        replacement = MailboxRef(peers[0].id, peers[0].email)
    for cancelled in await tx.cancel_queued(mailbox_id=mailbox.id):
        events.setdefault(cancelled.identity_id, []).append(
            NewEvent(
                cancelled.conv_id,
                EmailCancelled(cancelled.pending_id, cancelled.recipient, CancelReason.NO_ACCOUNTS),
            )
        )
    replaced = MailboxReplaced(MailboxRef(mailbox.id, mailbox.email), len(addresses), replacement)
    events.setdefault(mailbox.identity_id, []).append(NewEvent(None, replaced))
    return events
