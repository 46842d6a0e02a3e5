"""The webhook relay: push each org's events, signed, to its endpoint.

The relay is one more reader of the event log, like a stream: it keeps a durable
cursor per (endpoint, identity) and reads `seq > cursor`, woken by the same EventBus
hints (plus the safety poll), so pushing never loses what pulling would see. Each
event is tried at 0 s, 5 s and 30 s after its first attempt, each attempt bounded by
the attempt timeout; any 2xx is success. After the last failed attempt the event is
dropped from push (the cursor moves past it; the events API still has it), and three
such failed deliveries in a row pause the endpoint. A 410 pauses it at once, with the
cursor left before that event. The cursor is written after each event, so a crash
re-sends at most the events in flight: one per identity being pushed, and at most
IDENTITIES_AT_ONCE (at-least-once, in order per identity).

Only one relay delivers an endpoint at a time: it holds a lease on the endpoint row,
renewed while it works, and every write of progress goes through the lease (a relay
that lost it records nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Protocol

from mailpool_server.service.clock import Clock, now_ms
from mailpool_server.service.event_bus import EventBus, Waiter
from mailpool_server.service.events import Event
from mailpool_server.service.models import Identity
from mailpool_server.service.ports import Store
from mailpool_server.service.timer import Timer
from mailpool_server.service.webhook_models import EndpointStatus, PauseReason, WebhookEndpoint

log = logging.getLogger("mailpool.webhooks")

SECRET_PREFIX = "whsec_"
RETRY_OFFSETS_S = (0.0, 5.0, 30.0)
ATTEMPT_TIMEOUT_S = 10.0
PAUSE_AFTER_FAILED_DELIVERIES = 3
DEFAULT_LEASE_S = 30.0
DEFAULT_POLL_S = 1.0
PAGE = 100
# Identities of one endpoint pushed at the same time (each one event at a time, in order).
IDENTITIES_AT_ONCE = 8

HEADER_EVENT_TYPE = "X-Inboxbase-Event-Type"
HEADER_EVENT_ID = "X-Inboxbase-Event-Id"
HEADER_SIGNATURE = "X-Inboxbase-Signature"


def new_secret() -> str:
    """whsec_ + 48 hex digits (192 random bits)."""
    return SECRET_PREFIX + secrets.token_hex(24)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Inboxbase-Signature value: t=<unix seconds>,v1=<hex HMAC-SHA256 of
    "<t>.<raw body>" keyed with the whole secret string (prefix included)>."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookUnreachable(Exception):
    """No HTTP answer: refused, reset, DNS, TLS."""


class WebhookSender(Protocol):
    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> int:
        """POST body to url; the response's status code. Raises WebhookUnreachable
        when no answer came. The caller also bounds the call by its own timer."""
        ...


# An event as the body of its delivery: the contract's JSON envelope, as bytes.
EventRenderer = Callable[[Event], bytes]


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # a 2xx
    FAILED = "failed"  # every attempt failed: dropped from push
    GONE = "gone"  # a 410: pause at once
    STOPPED = "stopped"  # paused, lease lost or shutting down while trying


class WebhookRelay:
    """Delivers the endpoints this relay (`owner`) holds the lease of."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        timer: Timer,
        bus: EventBus,
        sender: WebhookSender,
        render: EventRenderer,
        *,
        owner: str,
        lease_s: float = DEFAULT_LEASE_S,
        poll_s: float = DEFAULT_POLL_S,
        timeout_s: float = ATTEMPT_TIMEOUT_S,
        retry_offsets_s: tuple[float, ...] = RETRY_OFFSETS_S,
    ) -> None:
        self.owner = owner
        self._store = store
        self._clock = clock
        self._timer = timer
        self._bus = bus
        self._sender = sender
        self._render = render
        self._lease_ms = int(lease_s * 1000)
        self._renew_s = lease_s / 3
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._offsets = retry_offsets_s
        self._stopping = False
        self._waiters: set[Waiter] = set()
        # Set after every claim, recorded outcome and release: what tests wait on
        # (with a bounded timeout) instead of sleeping.
        self.progress = asyncio.Event()

    def stop(self) -> None:
        """Deliver nothing new: endpoint loops end after the event in hand."""
        self._stopping = True
        for waiter in self._waiters:
            waiter.wake.set()

    async def claim(self, limit: int = 16) -> list[WebhookEndpoint]:
        """Lease endpoints nobody delivers now (or whose relay's lease ran out)."""
        now = now_ms(self._clock)
        try:
            async with self._store.write() as tx:
                return await tx.claim_webhooks(self.owner, now, now + self._lease_ms, limit)
        finally:
            self.progress.set()

    async def run_endpoint(self, endpoint_id: str) -> None:
        """Deliver one endpoint until it is paused, the lease is lost or the relay
        stops; then let go of the lease (unless another relay has it)."""
        main = asyncio.current_task()
        assert main is not None
        lost = False

        async def keep_lease() -> None:
            nonlocal lost
            while True:
                await self._timer.sleep(self._renew_s)
                try:
                    if await self._renew(endpoint_id) is None:
                        lost = True
                except Exception:  # a database hiccup: try again at the next renewal
                    log.exception("webhook lease renewal failed")
                    continue
                if lost:
                    log.warning("webhook lease lost", extra={"fields": {"endpoint": endpoint_id}})
                    main.cancel()
                    return

        keeper = asyncio.create_task(keep_lease())
        try:
            await self._follow(endpoint_id)
        except asyncio.CancelledError:
            if not lost:
                raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if not lost:
            async with self._store.write() as tx:
                await tx.release_webhook_lease(endpoint_id, self.owner)
        self.progress.set()

    async def _renew(self, endpoint_id: str) -> WebhookEndpoint | None:
        async with self._store.write() as tx:
            return await tx.renew_webhook_lease(
                endpoint_id, self.owner, now_ms(self._clock) + self._lease_ms
            )

    async def _follow(self, endpoint_id: str) -> None:
        # Registered before each round's reads: a commit during the round sets the
        # flag again and earns another round (as the streams do).
        with self._bus.waiter(None) as waiter:
            self._waiters.add(waiter)
            try:
                while not self._stopping:
                    waiter.wake.clear()
                    try:
                        if not await self._round(endpoint_id):
                            return
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("webhook round failed")
                    if not waiter.wake.is_set() and not self._stopping:
                        await self._timer.wait(waiter.wake, self._poll_s)
            finally:
                self._waiters.discard(waiter)

    def _mine(self, endpoint: WebhookEndpoint | None) -> bool:
        return (
            endpoint is not None
            and endpoint.status is EndpointStatus.ACTIVE
            and endpoint.lease_owner == self.owner
        )

    async def _round(self, endpoint_id: str) -> bool:
        """Deliver everything past the cursors; False when the endpoint is to be let go."""
        async with self._store.read() as tx:
            endpoint = await tx.webhook_by_id(endpoint_id)
            if endpoint is None or not self._mine(endpoint):
                return False
            identities = await tx.identities_of(endpoint.org_id, "", 1_000_000)
            heads = await tx.head_seqs([i.id for i in identities])
            cursors = await tx.webhook_cursors(endpoint_id)
        behind = [i for i in identities if cursors.get(i.id, 0) < heads.get(i.id, 0)]
        # Order holds per identity, so identities are pushed side by side (one event
        # in flight each, a few at a time): one slow identity does not hold the rest,
        # and an org's throughput is not one round trip plus one commit per event.
        # A TaskGroup ends every sibling when one fails, so no delivery outlives its
        # round (the next round would start it again).
        slots = asyncio.Semaphore(IDENTITIES_AT_ONCE)
        keep: list[bool] = []

        async def catch_up(identity: Identity) -> None:
            async with slots:
                keep.append(
                    await self._catch_up(
                        endpoint_id, identity, cursors.get(identity.id, 0), heads[identity.id]
                    )
                )

        async with asyncio.TaskGroup() as group:
            for identity in behind:
                group.create_task(catch_up(identity))
        return all(keep)

    async def _catch_up(self, endpoint_id: str, identity: Identity, cursor: int, head: int) -> bool:
        """Push one identity's events past its cursor, in seq order; False when the
        endpoint is to be let go."""
        while cursor < head:
            async with self._store.read() as tx:
                page = await tx.events_after(identity, cursor, (), PAGE)
            if not page:
                break
            for event in page:
                if self._stopping:
                    return False
                outcome = await self._deliver(endpoint_id, event)
                if outcome is Outcome.STOPPED or not await self._record(
                    endpoint_id, event, outcome
                ):
                    return False
                cursor = event.seq
        return True

    async def _deliver(self, endpoint_id: str, event: Event) -> Outcome:
        body = self._render(event)
        first = self._timer.monotonic()
        for number, offset in enumerate(self._offsets, 1):
            delay = first + offset - self._timer.monotonic()
            if delay > 0:
                await self._timer.sleep(delay)
            if self._stopping:
                return Outcome.STOPPED
            # Read before every attempt: a rotated secret, a new URL or a pause
            # applies to the next attempt.
            async with self._store.read() as tx:
                endpoint = await tx.webhook_by_id(endpoint_id)
            if endpoint is None or not self._mine(endpoint):
                return Outcome.STOPPED
            status = await self._attempt(endpoint, event, body)
            fields = {"endpoint": endpoint_id, "event": event.id, "attempt": number}
            if status is not None and 200 <= status < 300:
                return Outcome.DELIVERED
            if status == 410:
                return Outcome.GONE
            log.info("webhook attempt failed", extra={"fields": {**fields, "status": status}})
        return Outcome.FAILED

    async def _attempt(self, endpoint: WebhookEndpoint, event: Event, body: bytes) -> int | None:
        """One POST; its status, or None for no answer within the timeout."""
        timestamp = now_ms(self._clock) // 1000
        headers = {
            "Content-Type": "application/json",
            HEADER_EVENT_TYPE: event.type.value,
            HEADER_EVENT_ID: event.id,
            HEADER_SIGNATURE: signature(endpoint.secret, timestamp, body),
        }
        post = asyncio.ensure_future(
            self._sender.post(endpoint.url, body, headers, self._timeout_s)
        )
        done = asyncio.Event()
        post.add_done_callback(lambda _: done.set())
        try:
            # The injected timer bounds the attempt, so tests move time rather than
            # wait for it; the sender's own timeout is only a backstop.
            answered = await self._timer.wait(done, self._timeout_s)
        finally:
            if not post.done():
                post.cancel()
        if not answered:
            return None
        try:
            return post.result()
        except WebhookUnreachable as error:
            log.info("webhook unreachable", extra={"fields": {"error": str(error)}})
        except Exception:
            log.exception("webhook sender failed")
        return None

    async def _record(self, endpoint_id: str, event: Event, outcome: Outcome) -> bool:
        """Store the outcome through the lease; False when the endpoint is to be let
        go (paused now, or another relay holds it)."""
        try:
            return await self._store_outcome(endpoint_id, event, outcome)
        finally:
            self.progress.set()

    async def _store_outcome(self, endpoint_id: str, event: Event, outcome: Outcome) -> bool:
        now = now_ms(self._clock)
        async with self._store.write() as tx:
            endpoint = await tx.renew_webhook_lease(endpoint_id, self.owner, now + self._lease_ms)
            if endpoint is None:
                return False  # another relay took over: it resumes from the cursor
            if outcome is Outcome.GONE:
                # The cursor stays before this event: enable resumes with it.
                await tx.pause_webhook(endpoint_id, PauseReason.GONE, now)
                log.warning("webhook endpoint answered 410: paused", extra={"fields": {}})
                return False
            await tx.set_webhook_cursors(endpoint_id, {event.identity_id: event.seq})
            failures = 0 if outcome is Outcome.DELIVERED else endpoint.failed_deliveries + 1
            if failures != endpoint.failed_deliveries:
                await tx.set_webhook_failures(endpoint_id, failures)
            if outcome is Outcome.FAILED:
                log.warning(
                    "webhook delivery dropped after every attempt failed",
                    extra={"fields": {"event": event.id, "seq": event.seq}},
                )
            if failures >= PAUSE_AFTER_FAILED_DELIVERIES:
                await tx.pause_webhook(endpoint_id, PauseReason.FAILURES, now)
                return False
        return endpoint.status is EndpointStatus.ACTIVE
