"""The webhook relay in a real server (SQLite, and PostgreSQL when configured) posting to
a real HTTP receiver on loopback that checks every signature with the client helper.

Time is a ManualTimer: retry delays (5 s, 30 s) and the 10 s attempt timeout are driven
by it (the sender's own httpx timeout is only a backstop), so the tests move time
instead of waiting. Everything else is awaited on conditions with bounded timeouts:
the receiver's requests, the timer's pending deadlines, the relay's progress event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import httpx
import pytest

from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.clock import FakeClock, now_ms
from mailpool_server.service.timer import ManualTimer
from mailpool_server.service.webhook_admin import WebhookAdmin
from mailpool_server.service.webhook_models import EndpointStatus, PauseReason, WebhookEndpoint
from mailpool_server.service.webhooks import WebhookRelay
from tests.delivery.webhook_receiver import Receiver
from tests.sending import send
from tests.support import Tenant


class StepTimer(ManualTimer):
    """A ManualTimer that tells when a deadline `seconds` from now is pending."""

    def pending(self) -> list[float]:
        return sorted(
            round(deadline - self.monotonic(), 3)
            for deadline, _, future in self._due
            if not future.done()
        )

    async def until_pending(self, seconds: float, timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s):
            while round(seconds, 3) not in self.pending():
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def timer() -> StepTimer:
    return StepTimer()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.run_webhook_relay = True
    settings.http_port = 0  # to compare a push with the pull
    # Renewals every 1000 s of timer time: never among the 5/25/10 s deadlines here.
    settings.webhook_lease_s = 3000.0
    return settings


@pytest.fixture
async def receiver(clock: FakeClock) -> AsyncIterator[Receiver]:
    r = Receiver([], now=lambda: now_ms(clock) / 1000)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


def relay_of(app: App) -> WebhookRelay:
    assert app.relay is not None
    return app.relay.relay


async def until(app: App, check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """Until check() holds, re-checked after each step of the relay's progress."""
    progress = relay_of(app).progress
    async with asyncio.timeout(timeout_s):
        while True:
            progress.clear()
            if await check():
                return
            await progress.wait()


async def endpoint_of(app: App, org: str = "acme") -> WebhookEndpoint:
    async with app.store.read() as tx:
        found = await tx.org_by_name(org)
        assert found is not None
        endpoint = await tx.webhook_of_org(found.id)
    assert endpoint is not None
    return endpoint


@pytest.fixture
async def hooked(
    app: App, tenant: Tenant, receiver: Receiver, timer: StepTimer
) -> tuple[WebhookAdmin, str]:
    """The org's endpoint posts to the receiver, and the relay holds its lease."""
    admin = WebhookAdmin(app.store, app.clock, allow_http_loopback=True)
    endpoint, secret = await admin.set("acme", receiver.url)
    assert secret is not None and secret.startswith("whsec_")
    receiver.secrets.append(secret)

    async def held() -> bool:
        return endpoint.id in app.relay.delivering if app.relay else False

    await timer.advance(1.0)  # the relay's next claim round
    await until(app, held)
    return admin, secret


async def test_events_are_pushed_signed_with_the_bytes_the_pull_shows(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, receiver: Receiver, hooked: object
) -> None:
    await send(channel, tenant, to=["a@example.com", "b@example.com"])
    await receiver.until_requests(2)
    assert app.http is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http.port}") as client:
        pulled = (
            await client.get(
                f"/v1/identities/{tenant.handle}/events",
                headers={"Authorization": f"Bearer {tenant.key}"},
            )
        ).json()["events"]
    assert len(pulled) == 2
    for request, event in zip(receiver.requests, pulled, strict=True):
        assert request.body == json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )
        assert all(request.valid.values())
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-inboxbase-event-type"] == "email.queued"
        assert request.headers["x-inboxbase-event-id"] == event["id"]
        t = int(now_ms(app.clock) / 1000)
        assert request.headers["x-inboxbase-signature"].startswith(f"t={t},v1=")


async def test_500_twice_then_200_arrives_on_the_third_attempt(
    app: App,
    channel: grpc.aio.Channel,
    tenant: Tenant,
    receiver: Receiver,
    timer: StepTimer,
    hooked: tuple[WebhookAdmin, str],
) -> None:
    receiver.script.extend([500, 500, 200])
    await send(channel, tenant, to="a@example.com")
    await receiver.until_requests(1)
    await timer.until_pending(5.0)  # the second attempt: 5 s after the first
    await timer.advance(5.0)
    await receiver.until_requests(2)
    await timer.until_pending(25.0)  # the third: 30 s after the first
    await timer.advance(25.0)
    await receiver.until_requests(3)
    assert [r.answer for r in receiver.requests] == [500, 500, 200]
    assert len({r.headers["x-inboxbase-event-id"] for r in receiver.requests}) == 1
    assert all(all(r.valid.values()) for r in receiver.requests)

    async def delivered() -> bool:
        view = await hooked[0].show("acme")
        return view.cursors[0].cursor == 1

    await until(app, delivered)
    endpoint = await endpoint_of(app)
    assert (endpoint.status, endpoint.failed_deliveries) == (EndpointStatus.ACTIVE, 0)


async def test_410_pauses_at_once_and_enable_resumes_from_that_event(
    app: App,
    channel: grpc.aio.Channel,
    tenant: Tenant,
    receiver: Receiver,
    timer: StepTimer,
    hooked: tuple[WebhookAdmin, str],
) -> None:
    receiver.script.append(410)
    await send(channel, tenant, to="a@example.com")
    await receiver.until_requests(1)

    async def paused() -> bool:
        return (await endpoint_of(app)).status is EndpointStatus.PAUSED

    await until(app, paused)
    endpoint = await endpoint_of(app)
    assert endpoint.paused_reason is PauseReason.GONE
    assert endpoint.paused_at == now_ms(app.clock)
    await send(channel, tenant, to="b@example.com")
    # Claim rounds come and go (a minute of them); nothing is sent while paused.
    for _ in range(3):
        relay_of(app).progress.clear()
        await timer.advance(20.0)
        await asyncio.wait_for(relay_of(app).progress.wait(), 20)
    assert len(receiver.requests) == 1
    assert app.relay is not None and endpoint.id not in app.relay.delivering

    await hooked[0].enable("acme")
    await timer.advance(1.0)
    await receiver.until_requests(3)
    # The 410'd event again, then the one that arrived while paused, in order.
    assert [r.seq for r in receiver.requests] == [1, 1, 2]
    assert [r.answer for r in receiver.requests] == [410, 200, 200]


async def test_an_attempt_that_gets_no_answer_times_out_after_10_s(
    app: App,
    channel: grpc.aio.Channel,
    tenant: Tenant,
    receiver: Receiver,
    timer: StepTimer,
    hooked: object,
) -> None:
    receiver.script.extend(["hang", 200])
    await send(channel, tenant, to="a@example.com")
    await receiver.until_requests(1)
    await timer.until_pending(10.0)  # the attempt's timeout, on the injected timer
    await timer.advance(10.0)
    # The relay hung up; the second attempt (due 5 s after the first) goes at once.
    await receiver.until(lambda: receiver.requests[0].hung_up.is_set())
    await receiver.until_requests(2)
    assert [r.answer for r in receiver.requests] == ["hang", 200]
    assert receiver.requests[0].body == receiver.requests[1].body


async def test_three_failed_deliveries_in_a_row_pause_the_endpoint(
    app: App,
    channel: grpc.aio.Channel,
    tenant: Tenant,
    receiver: Receiver,
    timer: StepTimer,
    hooked: tuple[WebhookAdmin, str],
) -> None:
    receiver.default = 503
    await send(channel, tenant, to=["a@example.com", "b@example.com", "c@example.com"])
    await send(channel, tenant, to="d@example.com")
    for event in range(3):
        await receiver.until_requests(3 * event + 1)
        await timer.until_pending(5.0)
        await timer.advance(5.0)
        await receiver.until_requests(3 * event + 2)
        await timer.until_pending(25.0)
        await timer.advance(25.0)
        await receiver.until_requests(3 * event + 3)

    async def paused() -> bool:
        return (await endpoint_of(app)).status is EndpointStatus.PAUSED

    await until(app, paused)
    endpoint = await endpoint_of(app)
    assert (endpoint.paused_reason, endpoint.failed_deliveries) == (PauseReason.FAILURES, 3)
    assert [r.seq for r in receiver.requests] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    # The three were dropped from push (the events API still has them): the cursor is
    # past them, and enable goes on with the fourth.
    view = await hooked[0].show("acme")
    assert (view.cursors[0].cursor, view.cursors[0].head) == (3, 4)
    receiver.default = 200
    await hooked[0].enable("acme")
    await timer.advance(1.0)
    await receiver.until_requests(10)
    assert receiver.requests[-1].seq == 4


async def test_a_receiver_killed_and_restarted_mid_stream_loses_nothing(
    app: App,
    channel: grpc.aio.Channel,
    tenant: Tenant,
    receiver: Receiver,
    timer: StepTimer,
    hooked: object,
) -> None:
    receiver.script.extend([200, 200, "kill"])
    await send(channel, tenant, to=[f"r{n}@example.com" for n in range(6)])
    await receiver.until_requests(3)
    await timer.until_pending(5.0)  # the third event's second attempt
    await receiver.start()  # the same port again
    await timer.advance(5.0)
    await receiver.until_requests(7)
    assert [r.seq for r in receiver.answered()] == [1, 2, 3, 4, 5, 6]
    assert [r.seq for r in receiver.requests] == [1, 2, 3, 3, 4, 5, 6]


async def test_after_rotate_secret_the_next_delivery_is_signed_with_the_new_one_only(
    app: App,
    channel: grpc.aio.Channel,
    tenant: Tenant,
    receiver: Receiver,
    hooked: tuple[WebhookAdmin, str],
) -> None:
    admin, old = hooked
    await send(channel, tenant, to="a@example.com")
    await receiver.until_requests(1)
    new = await admin.rotate_secret("acme")
    assert new != old and new.startswith("whsec_")
    receiver.secrets.append(new)
    await send(channel, tenant, to="b@example.com")
    await receiver.until_requests(2)
    first, second = receiver.requests
    assert first.valid == {old: True}  # checked when it arrived, before the rotation
    assert second.valid == {old: False, new: True}


async def test_an_operator_pause_stops_delivery_until_enable(
    app: App,
    channel: grpc.aio.Channel,
    tenant: Tenant,
    receiver: Receiver,
    timer: StepTimer,
    hooked: tuple[WebhookAdmin, str],
    tmp_path: Path,
) -> None:
    admin, _ = hooked
    paused = await admin.disable("acme")
    assert (paused.status, paused.paused_reason) == (EndpointStatus.PAUSED, PauseReason.OPERATOR)
    await send(channel, tenant, to="a@example.com")

    async def let_go() -> bool:
        return app.relay is not None and not app.relay.delivering

    await until(app, let_go)
    assert receiver.requests == []
    await admin.enable("acme", from_now=True)  # skip what arrived while paused
    await send(channel, tenant, to="b@example.com")
    await timer.advance(1.0)
    await receiver.until_requests(1)
    assert [r.seq for r in receiver.requests] == [2]
