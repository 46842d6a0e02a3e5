"""Elapsed time for timeouts: heartbeats, long-poll holds, stalled streams, key checks.

The Clock says what time it is (dates, caps, warmup); a Timer measures how long
something waited. Both are injected, so tests move time instead of waiting for it:
LoopTimer is the event loop's monotonic clock, ManualTimer only moves when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from typing import Protocol


class Timer(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that only goes forward (its origin means nothing)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait until the event is set or timeout_s has passed; True when it is set."""
        ...


class LoopTimer:
    """The running event loop's clock."""

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        # One timer and one future: this runs once per subscriber per commit.
        if not event.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await event.wait()
        return event.is_set()


class ManualTimer:
    """Time that passes only in advance(): every sleep and wait whose deadline it
    reaches ends then, in deadline order, and nothing ends before."""

    def __init__(self) -> None:
        self._now = 0.0
        self._order = itertools.count()
        self._due: list[tuple[float, int, asyncio.Future[None]]] = []
        self._changed = asyncio.Event()
        self.waiting = 0  # pending wait() calls (readers); sleep() alone is not counted

    def monotonic(self) -> float:
        return self._now

    @property
    def sleeping(self) -> int:
        """How many sleeps and waits are pending (so a test knows someone waits)."""
        return sum(not future.done() for _, _, future in self._due)

    def _deadline(self, seconds: float) -> asyncio.Future[None]:
        """A future that advance() completes once `seconds` have passed from now. It is
        registered before the caller first yields, so a test that sees it pending
        knows the deadline is counted from the time it saw."""
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._due, (self._now + max(0.0, seconds), next(self._order), future))
        self._changed.set()
        return future

    async def sleep(self, seconds: float) -> None:
        future = self._deadline(seconds)
        try:
            await future
        finally:
            future.cancel()  # a cancelled sleeper no longer counts as sleeping

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        timeout = self._deadline(timeout_s)
        woken: asyncio.Future[object] = asyncio.ensure_future(event.wait())
        self.waiting += 1
        try:
            pending: set[asyncio.Future[object]] = {woken, timeout}  # type: ignore[arg-type]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.waiting -= 1
            woken.cancel()
            timeout.cancel()
        return event.is_set()

    async def until_waiting(self, count: int = 1) -> None:
        """Return once at least `count` wait() calls are pending: readers that a
        timeout (a heartbeat, the end of a long-poll) would end."""
        while self.waiting < count:
            self._changed.clear()
            await self._changed.wait()

    async def advance(self, seconds: float) -> None:
        """Move time on and let everything due run before returning."""
        self._now += seconds
        while self._due and self._due[0][0] <= self._now:
            _, _, future = heapq.heappop(self._due)
            if not future.done():
                future.set_result(None)
        for _ in range(5):  # the woken tasks, and what they wake in turn
            await asyncio.sleep(0)
