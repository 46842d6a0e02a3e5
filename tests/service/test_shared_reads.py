"""SharedReads: one read serves everyone asking for the same key until the next hint,
and never serves a read that began before a hint its caller may have seen."""

from __future__ import annotations

import asyncio

import pytest

from mailpool_server.service.event_bus import EventBus
from mailpool_server.service.shared_reads import SharedReads
from tests.service.fakes import settle


class Log:
    """A read whose result is the log's length when it starts; `gate` holds reads
    (as a database on the network does) until a test opens it."""

    def __init__(self) -> None:
        self.length = 0
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def read(self) -> int:
        self.reads += 1
        seen = self.length  # the snapshot: taken when the read begins
        if self.gate is not None:
            await self.gate.wait()
        return seen


def commit(log: Log, bus: EventBus) -> None:
    log.length += 1
    bus.events_committed("idn_1", log.length)


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def log() -> Log:
    return Log()


async def test_a_finished_read_serves_everyone_until_the_next_hint(bus: EventBus, log: Log) -> None:
    reads = SharedReads[int](bus, keep=lambda _: True)
    commit(log, bus)
    assert [await reads.get("tail", log.read) for _ in range(3)] == [1, 1, 1]
    assert (reads.fresh("tail"), log.reads) == (1, 1)
    commit(log, bus)
    assert reads.fresh("tail") is None  # the hint may announce what the read lacks
    assert (await reads.get("tail", log.read), log.reads) == (2, 2)
    assert (await reads.get("other", log.read), log.reads) == (2, 3)


async def test_a_read_in_flight_is_joined_until_a_hint_comes(bus: EventBus, log: Log) -> None:
    reads = SharedReads[int](bus, keep=lambda _: True)
    log.gate = asyncio.Event()
    first = asyncio.ensure_future(reads.get("tail", log.read))
    joined = asyncio.ensure_future(reads.get("tail", log.read))
    await settle(lambda: log.reads == 1)
    commit(log, bus)  # after the first read took its snapshot
    later = asyncio.ensure_future(reads.get("tail", log.read))
    await settle(lambda: log.reads == 2)  # a read of its own, not the stale one in flight
    log.gate.set()
    assert list(await asyncio.gather(first, joined, later)) == [0, 0, 1]


async def test_a_cancelled_reader_leaves_the_others_to_read_for_themselves(
    bus: EventBus, log: Log
) -> None:
    reads = SharedReads[int](bus, keep=lambda _: True)
    log.gate = asyncio.Event()
    reader = asyncio.ensure_future(reads.get("tail", log.read))
    joined = asyncio.ensure_future(reads.get("tail", log.read))
    await settle(lambda: log.reads == 1)
    reader.cancel()
    await settle(lambda: log.reads == 2)  # the joiner took over, uncancelled
    log.gate.set()
    assert await joined == 0
    assert reader.cancelled()


async def test_a_result_not_kept_is_shared_only_while_in_flight(bus: EventBus, log: Log) -> None:
    reads = SharedReads[int](bus, keep=lambda _: False)  # e.g. a full page of backlog
    log.gate = asyncio.Event()
    both = asyncio.gather(reads.get("page", log.read), reads.get("page", log.read))
    await settle(lambda: log.reads == 1)
    log.gate.set()
    assert list(await both) == [0, 0]
    assert reads.fresh("page") is None
    assert (await reads.get("page", log.read), log.reads) == (0, 2)
