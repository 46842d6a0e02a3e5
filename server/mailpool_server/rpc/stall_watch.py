"""Ends server streams whose client stopped taking messages, for a few attribute
writes per message.

A stream marks when each write starts and ends. One watcher task per server looks at
every open stream a few times per stall period; a write that has been held back
longer than the stall period (HTTP/2 flow control: the client is not reading) gets
its producer stopped at once, so a stalled subscriber holds no reader and no memory.
An earlier version raced every write against a timer (a task and a wait per
message), which cost more than the write itself when one event fans out to
hundreds of subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from mailpool_server.service.timer import Timer


class StreamStalled(Exception):
    """Thrown into a streaming servicer when the client stops taking messages."""


class StreamGuard:
    """One stream's write marker and, once stalled, the error to end it with."""

    __slots__ = ("_responses", "stalled", "writing_since")

    def __init__(self, responses: AsyncGenerator[Any, None]) -> None:
        self._responses = responses
        self.writing_since: float | None = None
        self.stalled: asyncio.Task[Exception] | None = None

    def stall(self) -> None:
        if self.stalled is None:
            self.stalled = asyncio.get_running_loop().create_task(_stop_producer(self._responses))


async def _stop_producer(responses: AsyncGenerator[Any, None]) -> Exception:
    """Stop the producer (no more reads, its resources freed) and let it name its
    resume point. It is suspended at its yield, since its consumer is blocked in
    the write."""
    try:
        await responses.athrow(StreamStalled())
        error: Exception = StreamStalled()
    except Exception as raised:  # the servicer's own answer, e.g. SubscriberStalled
        error = raised
    with contextlib.suppress(Exception):
        await responses.aclose()
    return error


class StallWatch:
    """The watcher shared by every stream of one server. Write markers are times on
    its timer."""

    def __init__(self, stall_s: float, timer: Timer) -> None:
        self.stall_s = stall_s
        self.timer = timer
        self._tick_s = min(1.0, stall_s / 4)
        self._guards: set[StreamGuard] = set()
        self._task: asyncio.Task[None] | None = None

    def open(self, responses: AsyncGenerator[Any, None]) -> StreamGuard:
        guard = StreamGuard(responses)
        self._guards.add(guard)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())
        return guard

    def close(self, guard: StreamGuard) -> None:
        self._guards.discard(guard)

    async def _watch(self) -> None:
        try:
            while self._guards:
                await self.timer.sleep(self._tick_s)
                late = self.timer.monotonic() - self.stall_s
                for guard in self._guards:
                    since = guard.writing_since
                    if since is not None and since <= late:
                        guard.stall()
        finally:
            self._task = None
