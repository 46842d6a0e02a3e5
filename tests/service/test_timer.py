"""LoopAlarm and Wake: a reader's timed waits on the event loop's clock, run on a loop
whose clock the test moves (no wall-clock waits)."""

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
        waiting = alarm.arm(wake, 15)
        await step(14.999)
        assert not waiting.done()
        await step(0.001)
        assert waiting.done() and not wake.is_set()

    run(scenario)


def test_a_woken_wait_leaves_the_next_one_its_full_timeout() -> None:
    async def scenario() -> None:
        alarm, wake = LoopAlarm(), Wake()
        first = alarm.arm(wake, 15)
        await step(10)
        wake.set()
        await first
        wake.clear()
        second = alarm.arm(wake, 15)  # deadline 25
        await step(5)  # the first wait's timer rings at 15, and is set again for 25
        assert not second.done()
        await step(9.999)
        assert not second.done()
        await step(0.001)
        assert second.done() and not wake.is_set()
        alarm.close()

    run(scenario)


def test_set_ends_every_wait_and_a_set_wake_ends_them_at_once() -> None:
    async def scenario() -> None:
        wake = Wake()
        waiting, armed = asyncio.ensure_future(wake.wait()), LoopAlarm().arm(wake, 15)
        await step(0)
        assert not waiting.done() and not armed.done()
        wake.set()
        assert await waiting is True
        await armed
        assert LoopAlarm().arm(wake, 15).done()
        assert await wake.wait() is True

    run(scenario)


def test_after_a_timeout_the_next_wait_ends_on_a_wake() -> None:
    async def scenario() -> None:
        alarm, wake = LoopAlarm(), Wake()
        timed_out = alarm.arm(wake, 15)
        await step(15)
        assert timed_out.done()
        again = alarm.arm(wake, 15)
        wake.set()  # completes the wait in progress, not the one that timed out again
        await again
        assert timed_out.result() is None

    run(scenario)
