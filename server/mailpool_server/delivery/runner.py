"""The loops that run beside the servers: dispatch and clock-driven timers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailpool_server.service.dispatch import Dispatcher
from mailpool_server.service.event_bus import EventBus
from mailpool_server.service.timer import Flag
from mailpool_server.service.timers import Timers

log = logging.getLogger("mailpool.delivery")


class DeliveryLoops:
    def __init__(
        self,
        dispatcher: Dispatcher,
        timers: Timers,
        bus: EventBus,
        *,
        poll_s: float = 1.0,
        timer_s: float = 5.0,
    ) -> None:
        self._dispatcher = dispatcher
        self._timers = timers
        self._bus = bus
        self._poll_s = poll_s
        self._timer_s = timer_s
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._dispatch()), asyncio.create_task(self._tick())]

    async def stop(self, grace_s: float) -> None:
        """Finish the batch in hand (up to grace_s), then stop. A row still in hand
        after that is picked up by the next dispatcher once its lease runs out."""
        self._stopping.set()
        done, pending = (
            await asyncio.wait(self._tasks, timeout=grace_s) if self._tasks else ((), ())
        )
        for task in pending:
            task.cancel()
        for task in (*done, *pending):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _pause(self, wake: Flag, seconds: float) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({stop, woken}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            woken.cancel()

    async def _dispatch(self) -> None:
        # Commits anywhere in this process wake the dispatcher (a send was queued);
        # the poll covers sends whose dispatchAt lies ahead, and other processes.
        with self._bus.waiter(None) as waiter:
            while not self._stopping.is_set():
                waiter.wake.clear()
                try:
                    claimed = await self._dispatcher.run_once()
                except Exception:
                    log.exception("dispatch round failed")
                    claimed = 0
                if not claimed:
                    await self._pause(waiter.wake, self._poll_s)

    async def _tick(self) -> None:
        never = asyncio.Event()
        while not self._stopping.is_set():
            try:
                await self._timers.fire_no_reply()
                await self._timers.close_days()
            except Exception:
                log.exception("timer round failed")
            await self._pause(never, self._timer_s)
