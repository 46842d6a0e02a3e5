"""LoopAlarm: a reader's timed waits on the event loop's clock, run on a loop whose
clock the test moves (no wall-clock waits)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mailpool_server.service.event_bus import Wake
from mailpool_server.service.timer import LoopAlarm


class SteppedLoop(asyncio.SelectorEventLoop):
    """An event loop whose time() moves only in step()."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now


async def begin(wait: Awaitable[bool]) -> asyncio.Future[bool]:
    """Start a wait and let it reach its await, at the current time."""
    started = asyncio.ensure_future(wait)
    await step(0)
    return started


async def step(seconds: float) -> None:
    """Move the running SteppedLoop's clock on and let what is due run."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, SteppedLoop)
    loop.now += seconds
    for _ in range(5):
        await asyncio.sleep(0)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    loop = SteppedLoop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


def test_a_wait_nobody_wakes_ends_at_its_deadline() -> None:
    async def scenario() -> None:
        alarm, wake = LoopAlarm(), Wake()
        waiting = await begin(alarm.wait(wake, 15))
        await step(14.999)
        assert not waiting.done()
        await step(0.001)
        assert await waiting is False

    run(scenario)


def test_a_woken_wait_leaves_the_next_one_its_full_timeout() -> None:
    async def scenario() -> None:
        alarm, wake = LoopAlarm(), Wake()
        first = await begin(alarm.wait(wake, 15))
        await step(10)
        wake.set()
        assert await first is True
        wake.clear()
        second = await begin(alarm.wait(wake, 15))  # deadline 25
        await step(5)  # the first wait's timer rings at 15, and is set again for 25
        assert not second.done()
        await step(9.999)
        assert not second.done()
        await step(0.001)
        assert await second is False
        alarm.close()

    run(scenario)


def test_a_wake_that_is_set_returns_at_once_and_set_wakes_every_waiter() -> None:
    async def scenario() -> None:
        wake = Wake()
        wake.set()
        assert await LoopAlarm().wait(wake, 15) is True
        wake.clear()
        waits = [
            asyncio.ensure_future(wake.wait()),
            asyncio.ensure_future(LoopAlarm().wait(wake, 15)),
        ]
        await step(0)
        wake.set()
        assert list(await asyncio.gather(*waits)) == [True, True]

    run(scenario)


def test_a_cancelled_wait_is_withdrawn() -> None:
    async def scenario() -> None:
        alarm, wake = LoopAlarm(), Wake()
        waiting = await begin(alarm.wait(wake, 15))
        await step(1)
        waiting.cancel()
        await step(0)
        assert waiting.cancelled()
        again = await begin(alarm.wait(wake, 15))  # deadline 16
        await step(14)  # the first timer rings at 15 for nobody but this wait
        assert not again.done()
        await step(1)
        assert await again is False

    run(scenario)
