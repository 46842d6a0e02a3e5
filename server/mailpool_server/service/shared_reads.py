"""One log read for every subscriber that a commit wakes at the same cursor.

A read is shared until the next announced commit (or wake-up of everyone): every hint
a subscriber has seen was given before the shared read began, so the read already
holds whatever that hint announced, and using it is as good as reading. A commit
announced later moves the bus's hint count, and from then on a subscriber reads anew.
This is how one commit fanned out to hundreds of subscribers costs one read, whether
the read finishes at once (SQLite, in the event loop's thread) or waits on the network
(PostgreSQL: the others wait for the one in flight).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar, cast

from mailpool_server.service.event_bus import EventBus

T = TypeVar("T")
# Reads kept at once (different logs or cursors since the last hint); past it the
# oldest go, which costs a read again, never an event.
MAX_SHARED = 64
# What a shared read resolves to when its reader failed or was cancelled: the others
# read for themselves rather than inherit someone else's error or cancellation.
_READ_AGAIN = object()


class SharedReads(Generic[T]):
    """Reads of one kind (pages, heads) by key. `keep(result)` says whether a finished
    read may serve later callers too (a short page: yes; a full page of backlog is
    shared only while in flight, so that replays hold no pages in memory)."""

    def __init__(self, bus: EventBus, *, keep: Callable[[T], bool]) -> None:
        self._bus = bus
        self._keep = keep
        self._hints = -1  # the bus's hint count the kept reads were started at
        # Any, not T | _READ_AGAIN: fresh() runs once per delivery, and typing.cast is a call.
        self._reads: dict[Hashable, asyncio.Future[Any]] = {}

    def fresh(self, key: Hashable) -> T | None:
        """A finished read of `key` started since the last hint, without awaiting (what
        every subscriber but the first that a commit wakes finds)."""
        if self._hints != self._bus.hints:
            return None  # a hint since: every kept read is stale (get() drops them)
        flight = self._reads.get(key)
        if flight is None or not flight.done():
            return None
        result = flight.result()
        return None if result is _READ_AGAIN else result

    async def get(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """The result of `read()`, or of a read of `key` started since the last hint."""
        while True:
            flight = self._current().get(key)
            if flight is None:
                return await self._read(key, read)
            if not flight.done():
                await asyncio.shield(flight)  # our cancellation must not cancel theirs
            result = flight.result()
            if result is not _READ_AGAIN:
                return cast(T, result)

    def _current(self) -> dict[Hashable, asyncio.Future[Any]]:
        if self._hints != self._bus.hints:
            self._reads.clear()
            self._hints = self._bus.hints
        return self._reads

    async def _read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        reads = self._reads
        if len(reads) >= MAX_SHARED:
            del reads[next(iter(reads))]
        flight: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        reads[key] = flight
        try:
            result = await read()
        except BaseException:
            flight.set_result(_READ_AGAIN)
            if reads.get(key) is flight:
                del reads[key]
            raise
        flight.set_result(result)
        if not self._keep(result) and reads.get(key) is flight:
            del reads[key]
        return result
