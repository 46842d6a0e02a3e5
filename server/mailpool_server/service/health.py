"""Mailbox health in a transaction: penalties, and what happens when a mailbox dies."""

from __future__ import annotations

from itertools import cycle

from mailpool_server.service.event_log import EventsByIdentity
from mailpool_server.service.events import account, email_cancelled, mailbox_replaced
from mailpool_server.service.models import Mailbox
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
    new_account = None
    if peers:
        assignments = dict(zip(addresses, cycle(p.id for p in peers), strict=False))
        await tx.move_pins(mailbox.id, assignments)
        new_account = account(peers[0].id, peers[0].email)
    for pending_id, identity_id, conv_id, recipient in await tx.cancel_queued(
        mailbox_id=mailbox.id
    ):
        events.setdefault(identity_id, []).append(
            email_cancelled(conv_id, pending_id, recipient, "no_accounts")
        )
    events.setdefault(mailbox.identity_id, []).append(
        mailbox_replaced(account(mailbox.id, mailbox.email), len(addresses), new_account)
    )
    return events
