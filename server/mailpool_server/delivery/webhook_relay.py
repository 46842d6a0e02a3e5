"""The webhook relay's loop: claim endpoints, run one delivery task per endpoint held."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from mailpool_server.delivery.webhook_http import HttpWebhookSender, render_body
from mailpool_server.service.clock import Clock
from mailpool_server.service.event_bus import EventBus
from mailpool_server.service.ids import new_id
from mailpool_server.service.ports import Store
from mailpool_server.service.timer import Timer
from mailpool_server.service.webhooks import (
    ATTEMPT_TIMEOUT_S,
    DEFAULT_LEASE_S,
    DEFAULT_POLL_S,
    WebhookRelay,
    WebhookSender,
)

log = logging.getLogger("mailpool.webhooks")


class WebhookRelayLoop:
    """Every poll_s: lease the endpoints nobody delivers and start a task for each;
    a task ends when its endpoint is paused or its lease lost (a later claim picks
    an enabled endpoint up again)."""

    def __init__(
        self, relay: WebhookRelay, timer: Timer, *, poll_s: float = DEFAULT_POLL_S
    ) -> None:
        self.relay = relay
        self._timer = timer
        self._poll_s = poll_s
        self._stopping = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def delivering(self) -> set[str]:
        """The endpoints this relay has a task for."""
        return set(self._running)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                for endpoint in await self.relay.claim():
                    if endpoint.id not in self._running:
                        self._spawn(endpoint.id)
            except Exception:
                log.exception("webhook claim failed")
            await self._timer.wait(self._stopping, self._poll_s)

    def _spawn(self, endpoint_id: str) -> None:
        task = asyncio.create_task(self._endpoint(endpoint_id))
        self._running[endpoint_id] = task

    async def _endpoint(self, endpoint_id: str) -> None:
        try:
            await self.relay.run_endpoint(endpoint_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook endpoint task failed")
        finally:
            self._running.pop(endpoint_id, None)

    async def stop(self, grace_s: float) -> None:
        """Finish the deliveries in hand (up to grace_s), then stop. An event whose
        outcome was not recorded is sent again by the next relay (at-least-once)."""
        self._stopping.set()
        self.relay.stop()
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class ClosingRelayLoop(WebhookRelayLoop):
    """The loop that owns its HTTP sender, closed with it."""

    def __init__(
        self, relay: WebhookRelay, timer: Timer, sender: HttpWebhookSender, *, poll_s: float
    ) -> None:
        super().__init__(relay, timer, poll_s=poll_s)
        self._sender = sender

    async def stop(self, grace_s: float) -> None:
        await super().stop(grace_s)
        await self._sender.aclose()


def relay_owner() -> str:
    """A name for this relay that says where it runs (show prints it)."""
    return f"rly_{os.getpid()}_{new_id('x')[2:10]}"


def start_relay(
    store: Store,
    clock: Clock,
    timer: Timer,
    bus: EventBus,
    *,
    lease_s: float = DEFAULT_LEASE_S,
    poll_s: float = DEFAULT_POLL_S,
    timeout_s: float = ATTEMPT_TIMEOUT_S,
    sender: WebhookSender | None = None,
) -> WebhookRelayLoop:
    """The relay with its HTTP sender (or the one given), started."""
    http: HttpWebhookSender | None = None
    if sender is None:
        sender = http = HttpWebhookSender()
    relay = WebhookRelay(
        store,
        clock,
        timer,
        bus,
        sender,
        render_body,
        owner=relay_owner(),
        lease_s=lease_s,
        poll_s=poll_s,
        timeout_s=timeout_s,
    )
    loop = (
        ClosingRelayLoop(relay, timer, http, poll_s=poll_s)
        if http is not None
        else WebhookRelayLoop(relay, timer, poll_s=poll_s)
    )
    loop.start()
    return loop
