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
import time
from collections.abc import Awaitable
from typing import Protocol

from mailpool_server.service.event_bus import Wake


class Flag(Protocol):
    """What a timed wait waits on: an asyncio.Event, or a reader's Wake."""

    def is_set(self) -> bool: ...

    async def wait(self) -> bool: ...


class Alarm(Protocol):
    """Timer.wait for one reader that waits again and again (a stream between events,
    with its heartbeat period as the timeout). Close it when the reader is done."""

    def arm(self, wake: Wake, timeout_s: float) -> Awaitable[object]:
        """What to await: it ends when the wake is set, or timeout_s from now (then
        the wake is still unset)."""
        ...

    def close(self) -> None: ...


class Timer(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that only goes forward (its origin means nothing)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: Flag, timeout_s: float) -> bool:
        """Wait until the event is set or timeout_s has passed; True when it is set."""
        ...

    def alarm(self) -> Alarm: ...


class LoopTimer:
    """Real time: the system's monotonic clock and the running event loop's timers."""

    # The clock asyncio's own loop reads, as a builtin: a stream reads it once per
    # message. (uvloop's loop.time() reads the same clock, through two calls.)
    monotonic = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: Flag, timeout_s: float) -> bool:
        if not event.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await event.wait()
        return event.is_set()

    def alarm(self) -> LoopAlarm:
        return LoopAlarm()


class LoopAlarm:
    """One reader's waits with one loop timer per quiet period instead of one per wait.

    A wait that a wake-up ends leaves its timer set; when the timer rings before the
    latest wait's deadline, it is set again for that deadline, and only a wait that
    reaches its deadline ends by it. A busy stream is woken once per event, for every
    subscriber of a fan-out, and then pays for one future.
    """

    __slots__ = ("_deadline", "_rings_at", "_timer", "_waiting", "_wake")

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None
        self._rings_at = 0.0
        self._deadline = 0.0  # the latest wait's
        self._waiting: asyncio.Future[None] | None = None
        self._wake: Wake | None = None

    def arm(self, wake: Wake, timeout_s: float) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        self._deadline = deadline = loop.time() + timeout_s
        if self._timer is None or deadline < self._rings_at:
            self._set_timer(loop, deadline)
        self._wake = wake
        self._waiting = wake.future()
        return self._waiting

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set_timer(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        self.close()
        self._rings_at = at
        self._timer = loop.call_at(at, self._ring)

    def _ring(self) -> None:
        self._timer = None
        waiting = self._waiting
        if waiting is None or waiting.done():
            return  # nobody waits: the next wait sets a timer of its own
        if self._deadline > self._rings_at:  # waits since this was set moved the deadline
            self._set_timer(asyncio.get_running_loop(), self._deadline)
            return
        assert self._wake is not None
        self._wake.withdraw(waiting)
        waiting.set_result(None)


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

    async def wait(self, event: Flag, timeout_s: float) -> bool:
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

    def alarm(self) -> Alarm:
        return _ManualAlarm(self)

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


class _ManualAlarm:
    """Each wait is the ManualTimer's own, so tests see and end it as any other."""

    def __init__(self, timer: ManualTimer) -> None:
        self._timer = timer

    def arm(self, wake: Wake, timeout_s: float) -> Awaitable[object]:
        return asyncio.ensure_future(self._timer.wait(wake, timeout_s))

    def close(self) -> None:
        pass
