"""EventFeed on the in-memory store: the long-poll page and the catch-up-then-live
subscription. Commits are made as a use case makes them (append in a write, then
tell the bus), and waits end on those wake-ups, never on time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, cast

import pytest

from mailpool_server.service.admin import Admin
from mailpool_server.service.errors import (
    IdentityNotFound,
    InvalidArgument,
    SeqInFuture,
    ShuttingDown,
)
from mailpool_server.service.event_bus import EventBus
from mailpool_server.service.event_feed import CaughtUp, EventFeed, Heartbeat, StreamItem
from mailpool_server.service.events import (
    BounceKind,
    EmailBounced,
    EmailNoReply,
    Event,
    EventPayload,
    NewEvent,
)
from mailpool_server.service.ports import Tx
from tests.memory_store import MemoryStore
from tests.service.fakes import let_others_run, settle
from tests.service.tenants import Tenant, make_tenant


async def subscribe(
    feed: EventFeed,
    org_id: str,
    *,
    handle: str | None,
    since: int = 0,
    whole_org: bool = False,
    org_since: dict[str, int] | None = None,
) -> AsyncGenerator[StreamItem, None]:
    """A subscription as single items, driven as StreamEvents drives it: a page of
    items at a time."""
    subscription = await feed.subscription(
        org_id, handle=handle, since=since, whole_org=whole_org, org_since=org_since
    )

    async def items() -> AsyncGenerator[StreamItem, None]:
        with subscription:
            while True:
                for item in await subscription.next_items():
                    yield item

    return items()


T = TypeVar("T")
BOUNCED = EmailBounced("bob@example.com", BounceKind.HARD, "5.1.1", "user unknown")
FOREVER_MS = 25_000  # the longest long poll; these tests end it with commits instead


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def feed(store: MemoryStore, bus: EventBus) -> EventFeed:
    return EventFeed(store, bus, heartbeat_s=3600)


async def commit(
    store: MemoryStore, bus: EventBus, tenant: Tenant, *payloads: EventPayload
) -> list[int]:
    """Append events in a write and announce them after the commit; their seqs."""
    async with store.write() as tx:
        identity = await tx.lock_identity(tenant.identity.id)
        events = await tx.append_events(identity, [NewEvent(None, p) for p in payloads], 0)
    bus.events_committed(tenant.identity.id, events[-1].seq)
    return [e.seq for e in events]


def no_replies(count: int) -> list[EventPayload]:
    return [EmailNoReply(n) for n in range(count)]


def pending(awaitable: asyncio.Future[T]) -> bool:
    return not awaitable.done()


# -- the long-poll page ----------------------------------------------------------------


async def test_a_page_reads_forward_from_since(
    feed: EventFeed, store: MemoryStore, bus: EventBus, alice: Tenant
) -> None:
    await commit(store, bus, alice, *no_replies(5))
    pages = []
    since = 0
    while True:
        page = await feed.list_events(alice.org_id, alice.handle, since, [], 2, 0)
        pages.append(([e.seq for e in page.events], page.cursor, page.has_more))
        if not page.events:
            break
        since = page.cursor
    assert pages == [([1, 2], 2, True), ([3, 4], 4, True), ([5], 5, False), ([], 5, False)]
    whole = await feed.list_events(alice.org_id, "ALICE@acme.test", 0, [], None, 0)
    assert (whole.handle, len(whole.events), whole.has_more) == (alice.handle, 5, False)


async def test_a_page_filters_by_type(
    feed: EventFeed, store: MemoryStore, bus: EventBus, alice: Tenant
) -> None:
    await commit(store, bus, alice, EmailNoReply(1), BOUNCED, EmailNoReply(2), BOUNCED)
    bounces = ["email.bounced", "email.bounced"]
    page = await feed.list_events(alice.org_id, alice.handle, 0, bounces, 1, 0)
    assert ([e.seq for e in page.events], page.cursor, page.has_more) == ([2], 2, True)
    page = await feed.list_events(alice.org_id, alice.handle, 2, bounces, 1, 0)
    assert ([e.seq for e in page.events], page.cursor, page.has_more) == ([4], 4, False)
    with pytest.raises(InvalidArgument, match=r"unknown event type 'email\.opened'"):
        await feed.list_events(alice.org_id, alice.handle, 0, ["email.opened"], 1, 0)


@pytest.mark.parametrize(
    ("since", "limit", "timeout_ms", "field"),
    [(-1, 10, 0, "since"), (0, 0, 0, "limit"), (0, 201, 0, "limit"), (0, 10, 25_001, "timeoutMs")],
)
async def test_a_page_refuses_out_of_range_arguments(
    feed: EventFeed, alice: Tenant, since: int, limit: int, timeout_ms: int, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await feed.list_events(alice.org_id, alice.handle, since, [], limit, timeout_ms)
    assert caught.value.violations[0].field == field


async def test_a_page_past_the_head_is_seq_in_future(
    feed: EventFeed, store: MemoryStore, bus: EventBus, alice: Tenant
) -> None:
    await commit(store, bus, alice, *no_replies(2))
    with pytest.raises(SeqInFuture) as caught:
        await feed.list_events(alice.org_id, alice.handle, 3, [], None, FOREVER_MS)
    assert caught.value.details == {"handle": alice.handle, "since": "3", "head": "2"}


async def test_another_orgs_identity_is_not_found(
    feed: EventFeed, admin: Admin, alice: Tenant
) -> None:
    other = await make_tenant(admin, "other", "olga@other.test")
    with pytest.raises(IdentityNotFound):
        await feed.list_events(other.org_id, alice.handle, 0, [], None, 0)
    with pytest.raises(IdentityNotFound):
        await subscribe(feed, other.org_id, handle=alice.handle)


async def test_a_long_poll_waits_for_a_commit_of_its_identity(
    feed: EventFeed, store: MemoryStore, bus: EventBus, admin: Admin, alice: Tenant
) -> None:
    bob = await make_tenant(admin, "acme", "bob@acme.test", new_org=False)
    await commit(store, bus, alice, *no_replies(2))
    poll = asyncio.ensure_future(
        feed.list_events(alice.org_id, alice.handle, 2, [], None, FOREVER_MS)
    )
    await settle(lambda: bus.waiting == 1)
    await commit(store, bus, bob, EmailNoReply(9))  # another log: not a reason to answer
    await let_others_run()
    assert pending(poll)
    await commit(store, bus, alice, EmailNoReply(3), EmailNoReply(4))
    page = await poll
    assert ([e.seq for e in page.events], page.cursor) == ([3, 4], 4)
    assert bus.waiting == 0


async def test_a_filtered_long_poll_waits_for_a_type_it_wants(
    feed: EventFeed, store: MemoryStore, bus: EventBus, alice: Tenant
) -> None:
    poll = asyncio.ensure_future(
        feed.list_events(alice.org_id, alice.handle, 0, ["email.bounced"], None, FOREVER_MS)
    )
    await settle(lambda: bus.waiting == 1)
    await commit(store, bus, alice, EmailNoReply(1))
    await let_others_run()
    assert pending(poll)
    await commit(store, bus, alice, BOUNCED)
    assert [e.payload for e in (await poll).events] == [BOUNCED]


async def test_closing_the_feed_answers_a_long_poll_at_once(
    feed: EventFeed, bus: EventBus, alice: Tenant
) -> None:
    poll = asyncio.ensure_future(
        feed.list_events(alice.org_id, alice.handle, 0, [], None, FOREVER_MS)
    )
    await settle(lambda: bus.waiting == 1)
    feed.close()
    page = await poll
    assert (page.events, page.cursor, page.has_more) == ([], 0, False)


# -- the subscription ------------------------------------------------------------------


class Stream:
    """A subscription read item by item; `next_later` starts a read that waits."""

    def __init__(self, items: AsyncGenerator[StreamItem, None]) -> None:
        self._items = items

    async def take(self, count: int) -> list[StreamItem]:
        return [await anext(self._items) for _ in range(count)]

    def next_later(self) -> asyncio.Future[StreamItem]:
        return asyncio.ensure_future(anext(self._items))


@asynccontextmanager
async def opened(stream: AsyncGenerator[StreamItem, None]) -> AsyncIterator[Stream]:
    try:
        yield Stream(stream)
    finally:
        await stream.aclose()


def seqs(items: list[StreamItem]) -> list[object]:
    """Events as (handle, seq), markers as themselves."""
    return [(i.handle, i.seq) if isinstance(i, Event) else i for i in items]


async def test_a_subscription_sends_the_backlog_then_caught_up_then_live_events(
    feed: EventFeed, store: MemoryStore, bus: EventBus, alice: Tenant
) -> None:
    await commit(store, bus, alice, *no_replies(3))
    async with opened(await subscribe(feed, alice.org_id, handle=alice.handle, since=1)) as stream:
        assert seqs(await stream.take(3)) == [
            (alice.handle, 2),
            (alice.handle, 3),
            CaughtUp({alice.handle: 3}),
        ]
        live = stream.next_later()
        await let_others_run()
        assert pending(live)
        await commit(store, bus, alice, EmailNoReply(4), EmailNoReply(5))
        assert seqs([await live, *await stream.take(1)]) == [(alice.handle, 4), (alice.handle, 5)]


async def test_an_idle_subscription_sends_heartbeats_with_its_heads(
    store: MemoryStore, bus: EventBus, alice: Tenant
) -> None:
    eager = EventFeed(store, bus, heartbeat_s=0)  # a heartbeat whenever nothing is new
    await commit(store, bus, alice, *no_replies(2))
    async with opened(await subscribe(eager, alice.org_id, handle=alice.handle, since=2)) as stream:
        assert await stream.take(2) == [CaughtUp({alice.handle: 2}), Heartbeat({alice.handle: 2})]


async def test_a_whole_org_subscription_follows_every_identity_of_the_org(
    feed: EventFeed, store: MemoryStore, bus: EventBus, admin: Admin, alice: Tenant
) -> None:
    bob = await make_tenant(admin, "acme", "bob@acme.test", new_org=False)
    olga = await make_tenant(admin, "other", "olga@other.test")
    await commit(store, bus, alice, *no_replies(2))
    await commit(store, bus, bob, *no_replies(1))
    await commit(store, bus, olga, *no_replies(1))
    subscription = await subscribe(
        feed, alice.org_id, handle=None, whole_org=True, org_since={alice.handle: 1}
    )
    async with opened(subscription) as stream:
        assert seqs(await stream.take(3)) == [
            (alice.handle, 2),
            (bob.handle, 1),
            CaughtUp({alice.handle: 2, bob.handle: 1}),
        ]
        await commit(store, bus, olga, EmailNoReply(7))  # another org: never seen
        await commit(store, bus, bob, EmailNoReply(8))
        assert seqs(await stream.take(1)) == [(bob.handle, 2)]
        # An identity created after the subscription started is followed too.
        dave = await make_tenant(admin, "acme", "dave@acme.test", new_org=False)
        await commit(store, bus, dave, EmailNoReply(9))
        assert seqs(await stream.take(1)) == [(dave.handle, 1)]


@pytest.mark.parametrize(
    ("handle", "whole_org", "field"),
    [("alice@acme.test", True, "identity"), (None, False, "identity")],
)
async def test_a_subscription_names_an_identity_or_the_whole_org(
    feed: EventFeed, alice: Tenant, handle: str | None, whole_org: bool, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await subscribe(feed, alice.org_id, handle=handle, whole_org=whole_org)
    assert caught.value.violations[0].field == field


async def test_a_subscription_past_a_head_is_seq_in_future(
    feed: EventFeed, store: MemoryStore, bus: EventBus, alice: Tenant
) -> None:
    await commit(store, bus, alice, *no_replies(2))
    with pytest.raises(SeqInFuture):
        await subscribe(feed, alice.org_id, handle=alice.handle, since=3)
    with pytest.raises(SeqInFuture):
        await subscribe(
            feed, alice.org_id, handle=None, whole_org=True, org_since={alice.handle: 3}
        )
    with pytest.raises(IdentityNotFound):
        await subscribe(feed, alice.org_id, handle=None, whole_org=True, org_since={"x@y.test": 0})


async def test_closing_the_feed_ends_subscriptions(
    feed: EventFeed, bus: EventBus, alice: Tenant
) -> None:
    async with opened(await subscribe(feed, alice.org_id, handle=alice.handle)) as stream:
        assert await stream.take(1) == [CaughtUp({alice.handle: 0})]
        live = stream.next_later()
        await settle(lambda: bus.waiting == 1)
        feed.close()
        with pytest.raises(ShuttingDown):
            await live


async def test_a_closed_feed_refuses_new_subscriptions(feed: EventFeed, alice: Tenant) -> None:
    # A client that reconnects while the server stops is told so at once, rather than
    # sent a backlog and caught_up that the shutdown then cuts again.
    feed.close()
    with pytest.raises(ShuttingDown):
        await subscribe(feed, alice.org_id, handle=alice.handle)


class CountingPages:
    """The store, counting the pages of events read through it."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.pages = 0

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._store.read() as tx:
            yield cast(Tx, _CountingTx(tx, self))

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[Tx]:
        async with self._store.lookup() as tx:
            yield cast(Tx, _CountingTx(tx, self))

    def write(self, *, lock_timeout_s: float | None = None) -> AbstractAsyncContextManager[Tx]:
        return self._store.write(lock_timeout_s=lock_timeout_s)


class _CountingTx:
    def __init__(self, tx: Tx, counter: CountingPages) -> None:
        self._tx = tx
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        if name == "events_after":
            self._counter.pages += 1
        return getattr(self._tx, name)


async def test_a_commit_that_wakes_many_subscribers_is_read_once(
    store: MemoryStore, bus: EventBus, alice: Tenant
) -> None:
    counting = CountingPages(store)
    feed = EventFeed(counting, bus, heartbeat_s=3600)
    streams = [await subscribe(feed, alice.org_id, handle=alice.handle) for _ in range(5)]
    for stream in streams:
        assert await anext(stream) == CaughtUp({alice.handle: 0})
    live = [asyncio.ensure_future(anext(stream)) for stream in streams]
    await settle(lambda: bus.waiting == 5)
    await let_others_run()
    counting.pages = 0
    await commit(store, bus, alice, EmailNoReply(1))
    assert [seqs([await item]) for item in live] == [[(alice.handle, 1)]] * 5
    assert counting.pages == 1
    for stream in streams:
        await stream.aclose()
    assert bus.waiting == 0
