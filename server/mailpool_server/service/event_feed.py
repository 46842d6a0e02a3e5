"""Reading event logs: the long-poll page and the catch-up-then-live subscription.

The database is the only source of truth. A reader registers its wake-up waiter
*before* its last catch-up read, treats every wake-up as a hint, and always re-reads
`seq > last delivered`; so a commit can never fall between a read and a wait, and a
lost or duplicated hint costs one read, never an event. Events are read in pages, so
a slow subscriber is fed from the log at its own pace and holds no buffer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from mailpool_server.service.auth import identity_in_org
from mailpool_server.service.errors import InvalidArgument, SeqInFuture, ShuttingDown
from mailpool_server.service.event_bus import EventBus, Waiter
from mailpool_server.service.events import Event, EventType
from mailpool_server.service.limits import MAX_LONG_POLL_MS
from mailpool_server.service.models import Identity
from mailpool_server.service.paging import page_size
from mailpool_server.service.ports import Store
from mailpool_server.service.timer import LoopTimer, Timer

T = TypeVar("T")
STREAM_PAGE = 500
DEFAULT_HEARTBEAT_S = 15.0


@dataclass(frozen=True)
class EventPage:
    handle: str
    events: list[Event]
    cursor: int
    has_more: bool


@dataclass(frozen=True)
class CaughtUp:
    """The backlog is sent; heads maps handle → the seq it was sent up to."""

    heads: dict[str, int]


@dataclass(frozen=True)
class Heartbeat:
    heads: dict[str, int]


StreamItem = Event | CaughtUp | Heartbeat


def _check_types(types: list[str]) -> tuple[EventType, ...]:
    known = {t.value: t for t in EventType}
    unknown = [t for t in types if t not in known]
    if unknown:
        raise InvalidArgument.of(
            "types", f"unknown event type {unknown[0]!r}; known: {', '.join(known)}"
        )
    return tuple(dict.fromkeys(known[t] for t in types))


class EventFeed:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        *,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        timer: Timer | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._heartbeat_s = heartbeat_s
        self._timer = timer or LoopTimer()
        self._closing = False
        self._flights: dict[tuple[object, ...], asyncio.Future[Any]] = {}

    def close(self) -> None:
        """End every open subscription promptly (server shutdown)."""
        self._closing = True
        self._bus.wake_all()  # waiting readers see the flag at once

    async def list_events(
        self,
        org_id: str,
        handle: str,
        since: int,
        types: list[str],
        limit: int | None,
        timeout_ms: int,
    ) -> EventPage:
        """Events with seq > since, oldest first; waits up to timeout_ms for the first."""
        wanted = _check_types(types)
        size = page_size(limit, field="limit", default=100)
        if since < 0:
            raise InvalidArgument.of("since", "must be 0 or more")
        if not 0 <= timeout_ms <= MAX_LONG_POLL_MS:
            raise InvalidArgument.of("timeoutMs", f"must be between 0 and {MAX_LONG_POLL_MS}")
        async with self._store.read() as tx:
            identity = await identity_in_org(tx, org_id, handle)
        deadline = self._timer.monotonic() + timeout_ms / 1000
        with self._bus.waiter(frozenset({identity.id})) as waiter:
            while True:
                waiter.wake.clear()
                async with self._store.read() as tx:
                    head = (await tx.head_seqs([identity.id])).get(identity.id, 0)
                    if since > head:
                        raise SeqInFuture(identity.handle, since, head)
                    events = await tx.events_after(identity, since, wanted, size + 1)
                remaining = deadline - self._timer.monotonic()
                if events or remaining <= 0 or self._closing:
                    break  # on shutdown: answer now, empty, so the client retries
                await self._wait(waiter, remaining)
        page = events[:size]
        return EventPage(
            handle=identity.handle,
            events=page,
            cursor=page[-1].seq if page else since,
            has_more=len(events) > size,
        )

    async def subscribe(
        self,
        org_id: str,
        *,
        handle: str | None,
        since: int = 0,
        whole_org: bool = False,
        org_since: dict[str, int] | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        """Validate a subscription and return its stream (errors surface here, before
        the first message)."""
        self._check_open()  # a server that is stopping takes no new subscribers
        if handle and whole_org:
            raise InvalidArgument.of("identity", "give an identity or wholeOrg, not both")
        if not handle and not whole_org:
            raise InvalidArgument.of("identity", "give an identity, or set wholeOrg")
        cursors: dict[str, int] = {}
        async with self._store.read() as tx:
            if handle:
                identity = await identity_in_org(tx, org_id, handle)
                starts = {identity.handle: since}
                identities = [identity]
            else:
                starts = {}
                for name, seq in (org_since or {}).items():
                    starts[(await identity_in_org(tx, org_id, name)).handle] = seq
                identities = await tx.identities_of(org_id, "", 1_000_000)
            by_handle = {i.handle: i for i in identities}
            heads = await tx.head_seqs([i.id for i in identities])
        for name, seq in starts.items():
            head = heads.get(by_handle[name].id, 0)
            if seq < 0:
                raise InvalidArgument.of("since", "must be 0 or more")
            if seq > head:
                raise SeqInFuture(name, seq, head)
        for identity in identities:
            cursors[identity.handle] = starts.get(identity.handle, 0)
        return self._stream(org_id, identities if handle else None, cursors)

    async def _stream(
        self, org_id: str, fixed: list[Identity] | None, cursors: dict[str, int]
    ) -> AsyncGenerator[StreamItem, None]:
        watch = frozenset(i.id for i in fixed) if fixed is not None else None
        with self._bus.waiter(watch) as waiter:
            async for event in self._catch_up(org_id, fixed, cursors, waiter):
                yield event
            yield CaughtUp(dict(cursors))
            while True:
                woke = await self._wait(waiter, self._heartbeat_s)
                self._check_open()
                if not woke:
                    yield Heartbeat(dict(cursors))
                    continue
                async for event in self._catch_up(org_id, fixed, cursors, waiter):
                    yield event

    async def _catch_up(
        self,
        org_id: str,
        fixed: list[Identity] | None,
        cursors: dict[str, int],
        waiter: Waiter,
    ) -> AsyncIterator[Event]:
        """Send everything committed past the cursors, page by page. The wake flag is
        cleared before each round's reads, so a commit during the round sets it again
        and earns another round; an unset flag means nothing new was committed."""
        while True:
            waiter.wake.clear()
            if fixed is None:
                async with self._store.read() as tx:
                    identities = await tx.identities_of(org_id, "", 1_000_000)
            else:
                identities = fixed
            heads = None
            if fixed is None or len(fixed) > 1:
                # Many logs: one read finds the few that grew.
                ids = [i.id for i in identities]
                heads = await self._shared(("heads", *sorted(ids)), partial(self._heads, ids))
            for identity in identities:
                cursors.setdefault(identity.handle, 0)
                if heads is not None and heads.get(identity.id, 0) <= cursors[identity.handle]:
                    continue
                while True:
                    since = cursors[identity.handle]
                    page = await self._shared(
                        ("events", identity.id, since), partial(self._page, identity, since)
                    )
                    for event in page:
                        self._check_open()
                        yield event
                        cursors[identity.handle] = event.seq
                    if len(page) < STREAM_PAGE:
                        break  # a short page is the end of the log
            if not waiter.wake.is_set():
                return

    async def _heads(self, identity_ids: list[str]) -> dict[str, int]:
        async with self._store.read() as tx:
            return await tx.head_seqs(identity_ids)

    async def _page(self, identity: Identity, since: int) -> list[Event]:
        async with self._store.read() as tx:
            return await tx.events_after(identity, since, (), STREAM_PAGE)

    async def _shared(self, key: tuple[object, ...], read: Callable[[], Awaitable[T]]) -> T:
        """Single-flight: subscribers woken by the same commit at the same cursor share
        one database read (each still reads the log; none trusts a cached copy)."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(read())
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        return await asyncio.shield(flight)

    async def _wait(self, waiter: Waiter, timeout_s: float) -> bool:
        """Wait for a wake-up (shutdown wakes everyone too) or the timeout; True when
        woken."""
        self._check_open()
        return await self._timer.wait(waiter.wake, timeout_s)

    def _check_open(self) -> None:
        if self._closing:
            raise ShuttingDown()
