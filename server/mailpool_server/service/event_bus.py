"""In-process wake-ups for event readers.

A wake-up is only a hint that an identity's log grew: readers always re-read the
database for seq > what they have, so a lost or duplicated hint costs a read, never
an event. Across replicas the store adds its own hint source (LISTEN/NOTIFY).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(eq=False)
class Waiter:
    """Set whenever one of `identity_ids` (or any identity, when None) commits events."""

    identity_ids: frozenset[str] | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, identity_id: str) -> bool:
        return self.identity_ids is None or identity_id in self.identity_ids


class EventBus:
    def __init__(self) -> None:
        self._waiters: set[Waiter] = set()

    @property
    def waiting(self) -> int:
        """How many readers are registered (a gauge; tests use it to see a reader go)."""
        return len(self._waiters)

    def events_committed(self, identity_id: str, head_seq: int) -> None:
        for waiter in self._waiters:
            if waiter.wants(identity_id):
                waiter.wake.set()

    def wake_all(self) -> None:
        """Wake every reader (a safety net where hints can be lost)."""
        for waiter in self._waiters:
            waiter.wake.set()

    @contextmanager
    def waiter(self, identity_ids: frozenset[str] | None) -> Iterator[Waiter]:
        """Register before the last catch-up read, so no commit can fall between the
        read and the wait."""
        waiter = Waiter(identity_ids)
        self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            self._waiters.discard(waiter)
