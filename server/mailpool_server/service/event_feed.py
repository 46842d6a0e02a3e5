"""Reading event logs: the long-poll page and the catch-up-then-live subscription.

The database is the only source of truth. A reader registers its wake-up waiter
*before* its last catch-up read, treats every wake-up as a hint, and always re-reads
`seq > last delivered`; so a commit can never fall between a read and a wait, and a
lost or duplicated hint costs one read, never an event. Events are read in pages, so
a slow subscriber is fed from the log at its own pace and holds no buffer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from mailpool_server.service.auth import identity_in_org
from mailpool_server.service.errors import InvalidArgument, SeqInFuture, ShuttingDown
from mailpool_server.service.event_bus import EventBus, Waiter
from mailpool_server.service.events import Event, EventType
from mailpool_server.service.limits import MAX_LONG_POLL_MS
from mailpool_server.service.models import Identity
from mailpool_server.service.paging import page_size
from mailpool_server.service.ports import Store
from mailpool_server.service.shared_reads import SharedReads
from mailpool_server.service.timer import Alarm, LoopTimer, Timer

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
        self._pages = SharedReads[list[Event]](bus, keep=_is_short)
        self._heads_read = SharedReads[dict[str, int]](bus, keep=_always)

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

    async def subscription(
        self,
        org_id: str,
        *,
        handle: str | None,
        since: int = 0,
        whole_org: bool = False,
        org_since: dict[str, int] | None = None,
    ) -> Subscription:
        """Validate a subscription and return it (errors surface here, before the first
        message)."""
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
        return Subscription(self, org_id, identities if handle else None, cursors)

    async def _identities(self, org_id: str) -> list[Identity]:
        async with self._store.read() as tx:
            return await tx.identities_of(org_id, "", 1_000_000)

    # One SELECT each: no transaction (Store.lookup).
    async def _heads(self, identity_ids: list[str]) -> dict[str, int]:
        async with self._store.lookup() as tx:
            return await tx.head_seqs(identity_ids)

    async def _page(self, identity: Identity, since: int) -> list[Event]:
        async with self._store.lookup() as tx:
            return await tx.events_after(identity, since, (), STREAM_PAGE)

    async def _wait(self, waiter: Waiter, timeout_s: float) -> bool:
        """Wait for a wake-up (shutdown wakes everyone too) or the timeout; True when
        woken."""
        self._check_open()
        return await self._timer.wait(waiter.wake, timeout_s)

    def _check_open(self) -> None:
        if self._closing:
            raise ShuttingDown()


def _is_short(page: list[Event]) -> bool:
    return len(page) < STREAM_PAGE


def _always(_: object) -> bool:
    return True


class Subscription:
    """One subscriber's cursors over the logs it follows.

    `next_items()` returns what to send next, waiting until something is due: a page of
    one log past its cursor, then `CaughtUp` once the backlog is out, then pages as
    commits come, and a `Heartbeat` after a quiet heartbeat period. The cursors move as
    a page is handed out: ask for more only once the last items are sent, so that a
    marker's heads are what was sent.

    This shape is for fan-out: one commit wakes hundreds of subscribers, so what a
    subscriber does per event is little more than its gRPC write. A page per call, not
    an event, and one call per page: the wait for a wake-up is inside it (one future,
    `Alarm`), which costs one more frame to resume than a wait in the caller but spares
    a call that would only say "nothing yet" (README, bench: -5% instructions per
    delivery).

    Use it as a context manager: its waiter is registered on entry (before the first
    read) and let go on exit.
    """

    def __init__(
        self, feed: EventFeed, org_id: str, fixed: list[Identity] | None, cursors: dict[str, int]
    ) -> None:
        self._feed = feed
        self._org_id = org_id
        self._fixed = fixed
        self._cursors = cursors
        self._waiter: Waiter | None = None
        self._alarm: Alarm | None = None
        self._unread: deque[Identity] = deque()  # logs this round has still to read
        self._rounds = 0
        self._caught_up = False
        self._waited = False  # a wait since the last round

    def __enter__(self) -> Subscription:
        watch = None if self._fixed is None else frozenset(i.id for i in self._fixed)
        self._waiter = self._feed._bus.register(watch)
        self._alarm = self._feed._timer.alarm()
        return self

    def __exit__(self, *_: object) -> None:
        if self._waiter is not None:
            self._feed._bus.unregister(self._waiter)
            self._waiter = None
        if self._alarm is not None:
            self._alarm.close()
            self._alarm = None

    async def next_items(self) -> Sequence[StreamItem]:
        """What to send next, once something is due (never empty)."""
        feed, waiter = self._feed, self._waiter
        assert waiter is not None, "enter the subscription first"
        unread = self._unread
        while True:
            if feed._closing:
                raise ShuttingDown()
            if unread:
                # The log's page past its cursor: inline, not a method, since every
                # subscriber a commit wakes comes here (a coroutine call per delivery).
                identity = unread[0]
                since = self._cursors[identity.handle]
                key = (identity.id, since)
                page = feed._pages.fresh(key)  # a read another subscriber made for this commit
                if page is None:
                    page = await feed._pages.get(key, partial(feed._page, identity, since))
                if _is_short(page):
                    unread.popleft()  # a short page is the end of the log
                if page:
                    self._cursors[identity.handle] = page[-1].seq
                    return page
            elif self._rounds == 0 or waiter.wake.is_set():
                # A round: the wake flag is cleared before its reads, so a commit during
                # the round sets it again and earns another round; an unset flag means
                # nothing new was committed.
                self._rounds += 1
                self._waited = False
                waiter.wake.clear()
                if self._fixed is not None and len(self._fixed) == 1:
                    self._unread.extend(self._fixed)  # one log: its page read tells
                else:
                    await self._find_grown_logs()
            elif not self._caught_up:
                self._caught_up = True
                return [CaughtUp(dict(self._cursors))]
            elif self._waited:  # a heartbeat period passed without a wake-up
                self._waited = False
                return [Heartbeat(dict(self._cursors))]
            else:
                # Until a wake-up (a commit, or the server stopping) or heartbeat_s
                # without one.
                assert self._alarm is not None
                self._waited = True
                await self._alarm.arm(waiter.wake, feed._heartbeat_s)

    async def _find_grown_logs(self) -> None:
        """Many logs: one read of their heads finds the few that grew."""
        feed = self._feed
        identities = (
            self._fixed if self._fixed is not None else await feed._identities(self._org_id)
        )
        for identity in identities:
            self._cursors.setdefault(identity.handle, 0)
        ids = [i.id for i in identities]
        key = tuple(sorted(ids))
        heads = feed._heads_read.fresh(key)
        if heads is None:
            heads = await feed._heads_read.get(key, partial(feed._heads, ids))
        self._unread.extend(i for i in identities if heads.get(i.id, 0) > self._cursors[i.handle])
