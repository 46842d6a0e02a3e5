"""In-process wake-ups for event readers.

A wake-up is only a hint that an identity's log grew: readers always re-read the
database for seq > what they have, so a lost or duplicated hint costs a read, never
an event. Across replicas the store adds its own hint source (LISTEN/NOTIFY).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


class Wake:
    """A reader's wake-up flag: set by a hint, cleared by the reader before it reads.

    asyncio.Event's interface (set, clear, is_set, wait), built on bare futures so
    that a timed wait costs one future (service/timer.py, Alarm): a stream waits
    once per event, for every subscriber of a fan-out.
    """

    __slots__ = ("_futures", "_is_set")

    def __init__(self) -> None:
        self._is_set = False
        self._futures: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._is_set

    def clear(self) -> None:
        self._is_set = False

    def set(self) -> None:
        if self._is_set:
            return
        self._is_set = True
        # The same list, emptied: a new one per wake-up would be one more object per
        # subscriber per event for the collector. set_result only schedules callbacks,
        # so nothing touches the list while this runs.
        for future in self._futures:
            if not future.done():
                future.set_result(None)
        self._futures.clear()

    def future(self) -> asyncio.Future[None]:
        """A future that set() completes (done already if the flag is set). Withdraw it
        when you stop waiting before that."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._is_set:
            future.set_result(None)
        else:
            self._futures.append(future)
        return future

    def withdraw(self, future: asyncio.Future[None]) -> None:
        with suppress(ValueError):  # set() has taken it already
            self._futures.remove(future)

    async def wait(self) -> bool:
        future = self.future()
        try:
            await future
        finally:
            if not future.done():
                self.withdraw(future)
        return True


@dataclass(eq=False)
class Waiter:
    """Set whenever one of `identity_ids` (or any identity, when None) commits events."""

    identity_ids: frozenset[str] | None
    wake: Wake = field(default_factory=Wake)


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
