"""Appending events for several identities in one transaction, and announcing them."""

from __future__ import annotations

from mailpool_server.service.events import NewEvent
from mailpool_server.service.models import Identity
from mailpool_server.service.ports import EventListener, Tx

EventsByIdentity = dict[str, list[NewEvent]]


def merge(into: EventsByIdentity, more: EventsByIdentity) -> None:
    for identity_id, events in more.items():
        into.setdefault(identity_id, []).extend(events)


async def append_all(
    tx: Tx, events: EventsByIdentity, at: int, locked: Identity | None = None
) -> dict[str, int]:
    """Append each identity's events (in id order, the lock order) and return the new
    head seq of each, to announce once the transaction has committed. `locked` is an
    identity the caller already holds, which is not read again."""
    heads = {}
    for identity_id in sorted(events):
        if events[identity_id]:
            if locked is not None and locked.id == identity_id:
                identity = locked
            else:
                identity = await tx.lock_identity(identity_id)
            heads[identity_id] = (await tx.append_events(identity, events[identity_id], at))[-1].seq
    return heads


def announce(listener: EventListener, heads: dict[str, int]) -> None:
    """Wake readers; call only after the commit that made these heads real."""
    for identity_id, head in heads.items():
        listener.events_committed(identity_id, head)
