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


class EventBus:
    def __init__(self) -> None:
        self._waiters: set[Waiter] = set()
        # Who to wake per identity, so that a commit touches only its own readers.
        self._by_identity: dict[str, set[Waiter]] = {}
        self._of_any: set[Waiter] = set()
        # Hints given so far (commits announced, wake-ups of everyone): a read started
        # at the current count holds everything announced (service/shared_reads.py).
        self.hints = 0

    @property
    def waiting(self) -> int:
        """How many readers are registered (a gauge; tests use it to see a reader go)."""
        return len(self._waiters)

    def events_committed(self, identity_id: str, head_seq: int) -> None:
        self.hints += 1
        for waiter in self._of_any:
            waiter.wake.set()
        for waiter in self._by_identity.get(identity_id, ()):
            waiter.wake.set()

    def wake_all(self) -> None:
        """Wake every reader (a safety net where hints can be lost)."""
        self.hints += 1
        for waiter in self._waiters:
            waiter.wake.set()

    def register(self, identity_ids: frozenset[str] | None) -> Waiter:
        """A waiter for these identities' commits (None: every identity's). Register
        before the last catch-up read, so no commit can fall between the read and the
        wait; unregister when done."""
        waiter = Waiter(identity_ids)
        self._waiters.add(waiter)
        if identity_ids is None:
            self._of_any.add(waiter)
        else:
            for identity_id in identity_ids:
                self._by_identity.setdefault(identity_id, set()).add(waiter)
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        self._waiters.discard(waiter)
        if waiter.identity_ids is None:
            self._of_any.discard(waiter)
            return
        for identity_id in waiter.identity_ids:
            waiters = self._by_identity.get(identity_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._by_identity[identity_id]

    @contextmanager
    def waiter(self, identity_ids: frozenset[str] | None) -> Iterator[Waiter]:
        """register() for the length of a block."""
        waiter = self.register(identity_ids)
        try:
            yield waiter
        finally:
            self.unregister(waiter)
