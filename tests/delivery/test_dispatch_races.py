"""Several dispatchers on one database, and one that dies mid-batch."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest

from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.clock import FakeClock
from mailpool_server.service.dispatch import DEFAULT_LEASE_MS, Dispatcher
from mailpool_server.service.models import Transport
from mailpool_server.service.outbound import OutgoingMessage
from tests.delivery.helpers import events_of, maildir_messages
from tests.sending import send
from tests.support import Tenant


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.cold_gap_ms = 0  # every row due at once: the dispatchers compete for each
    return settings


async def queue(channel: grpc.aio.Channel, tenant: Tenant, count: int) -> None:
    for start in range(0, count, 20):
        await send(channel, tenant, to=[f"r{n}@example.com" for n in range(start, start + 20)])


class MeetPeer:
    """A transport that holds its dispatcher's first claimed batch until the peer
    dispatcher has claimed a batch too. Claims commit before delivery starts, so both
    then hold rows: neither can drain the queue alone, whatever the scheduling."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.claimed = asyncio.Event()
        self.peer: MeetPeer | None = None

    async def deliver(self, message: OutgoingMessage) -> None:
        assert self.peer is not None
        self.claimed.set()
        await self.peer.claimed.wait()  # returns at once after the first meeting
        await self.inner.deliver(message)  # type: ignore[attr-defined]


async def test_two_dispatchers_racing_send_each_row_once(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    await queue(channel, tenant, 60)
    other = await App.open(app.settings, clock)  # its own engine: another process's view
    maildir = app.dispatcher._transports[Transport.MAILDIR]
    gates = [MeetPeer(maildir), MeetPeer(maildir)]
    gates[0].peer, gates[1].peer = gates[1], gates[0]
    # Small batches: the first claim leaves most rows for the other dispatcher and for
    # the race that follows.
    dispatchers = [
        Dispatcher(owner.store, clock, owner.bus, {Transport.MAILDIR: gate}, batch=5)
        for owner, gate in zip((app, other), gates, strict=True)
    ]
    try:

        async def drain(dispatcher: Dispatcher) -> int:
            total = 0
            while claimed := await dispatcher.run_once():
                total += claimed
            return total

        counts = await asyncio.gather(*(drain(d) for d in dispatchers))
    finally:
        await other.stop()
    assert sum(counts) == 60
    assert min(counts) >= 5, counts  # both really took part: each held a batch at once
    assert len(maildir_messages(app)) == 60
    sent = Counter(
        d["pendingId"] for t, d in await events_of(app, tenant.handle) if t == "email.sent"
    )
    assert len(sent) == 60
    assert set(sent.values()) == {1}


class StuckOnThird:
    """A transport that hangs on its third message, as a dispatcher that dies would."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0
        self.stuck = asyncio.Event()

    async def deliver(self, message: OutgoingMessage) -> None:
        self.calls += 1
        if self.calls == 3:
            self.stuck.set()
            await asyncio.Event().wait()  # never returns
        await self.inner.deliver(message)  # type: ignore[attr-defined]


async def test_a_batch_left_by_a_dead_dispatcher_is_finished_by_another(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    await send(channel, tenant, to=[f"k{n}@example.com" for n in range(6)])
    maildir = app.dispatcher._transports[Transport.MAILDIR]
    stuck = StuckOnThird(maildir)
    doomed = Dispatcher(
        app.store,
        clock,
        app.bus,
        {Transport.MAILDIR: stuck},
        concurrency=1,
    )
    task = asyncio.create_task(doomed.run_once())
    await stuck.stuck.wait()
    task.cancel()  # the process dies here: two sent, one in flight, three claimed and untouched
    assert len(maildir_messages(app)) == 2

    assert await app.dispatcher.run_once() == 0  # the dead one's lease still holds
    clock.advance(milliseconds=DEFAULT_LEASE_MS + 1)
    assert await app.dispatcher.run_once() == 4
    assert len(maildir_messages(app)) == 6
    sent = Counter(
        d["pendingId"] for t, d in await events_of(app, tenant.handle) if t == "email.sent"
    )
    assert len(sent) == 6
    assert set(sent.values()) == {1}
