"""EventService: ListEvents long-poll and StreamEvents, over a real channel."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from mailpool.v1 import event_pb2, send_pb2
from mailpool.v1 import event_service_pb2 as pb
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.clock import FakeClock, now_ms
from mailpool_server.service.policy import Tier
from mailpool_server.service.timer import ManualTimer
from tests.events_support import list_events, stream
from tests.sending import send
from tests.support import Tenant, make_tenant, rich_error

HEARTBEAT_S = 15.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.heartbeat_s = HEARTBEAT_S
    return settings


@pytest.fixture
def timer() -> ManualTimer:
    return ManualTimer()  # heartbeats and long-poll holds end only when a test moves it


async def send_many(channel: grpc.aio.Channel, tenant: Tenant, count: int, tag: str = "r") -> None:
    """Queue `count` recipients, 50 a request (one email.queued event each)."""
    for start in range(0, count, 50):
        to = [f"{tag}{n}@example.com" for n in range(start, min(count, start + 50))]
        await send(channel, tenant, to=to)


async def test_list_events_envelope_and_payload(
    channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    result = (await send(channel, tenant, to="bob@example.com")).results[0]
    page = await list_events(channel, tenant)
    [event] = page.events
    assert (page.identity, page.cursor, page.has_more) == (tenant.handle, 1, False)
    assert event.id.startswith("evt_") and len(event.id) == 30
    assert (event.seq, event.type, event.identity, event.conv_id) == (
        1,
        "email.queued",
        tenant.handle,
        result.conv_id,
    )
    assert event.create_time.ToMilliseconds() == now_ms(clock)
    queued = event.email_queued
    assert (queued.pending_id, queued.recipient) == (result.pending_id, "bob@example.com")
    assert queued.send_class == send_pb2.SEND_CLASS_COLD_FIRST_CONTACT
    assert queued.account == result.account
    assert queued.dispatch_time == result.dispatch_time


async def test_list_pages_with_cursor_and_has_more(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    await send_many(channel, tenant, 7)
    first = await list_events(channel, tenant, limit=5)
    assert [e.seq for e in first.events] == [1, 2, 3, 4, 5]
    assert (first.cursor, first.has_more) == (5, True)
    second = await list_events(channel, tenant, since=first.cursor, limit=5)
    assert [e.seq for e in second.events] == [6, 7]
    assert (second.cursor, second.has_more) == (7, False)


async def test_types_filter(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    await send_many(channel, tenant, 2)
    assert len((await list_events(channel, tenant, types=["email.queued"])).events) == 2
    assert (await list_events(channel, tenant, types=["email.sent"])).events == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"types": ["email.queued", "email.exploded"]}, "types"),
        ({"limit": 201}, "limit"),
        ({"limit": -1}, "limit"),
        ({"timeout_ms": 25_001}, "timeoutMs"),
        ({"since": -1}, "since"),
    ],
)
async def test_list_validation_names_the_field(
    channel: grpc.aio.Channel, tenant: Tenant, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_events(channel, tenant, **fields)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message.startswith(field)


async def test_long_poll_returns_soon_after_a_commit(
    channel: grpc.aio.Channel, tenant: Tenant, timer: ManualTimer
) -> None:
    poll = asyncio.create_task(list_events(channel, tenant, timeout_ms=20_000))
    await timer.until_waiting()
    await send(channel, tenant, to="bob@example.com")
    page = await poll  # the timer never moves: only the commit can have ended the hold
    assert [e.seq for e in page.events] == [1]


async def test_long_poll_times_out_empty_with_cursor_at_since(
    channel: grpc.aio.Channel, tenant: Tenant, timer: ManualTimer
) -> None:
    await send(channel, tenant, to="bob@example.com")
    poll = asyncio.create_task(list_events(channel, tenant, since=1, timeout_ms=150))
    await timer.until_waiting()
    await timer.advance(0.149)
    assert not poll.done()
    await timer.advance(0.001)
    page = await poll
    assert (list(page.events), page.cursor, page.has_more) == ([], 1, False)


async def test_since_beyond_head_is_out_of_range(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    await send(channel, tenant, to="bob@example.com")
    for call in (list_events(channel, tenant, since=2), _first(stream(channel, tenant, since=2))):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = rich_error(caught.value)
        assert (error.code, error.reason) == (grpc.StatusCode.OUT_OF_RANGE, "SEQ_IN_FUTURE")
        assert error.metadata == {"handle": tenant.handle, "since": "2", "head": "1"}


async def _first(call: grpc.aio.UnaryStreamCall) -> pb.StreamEventsResponse:  # type: ignore[type-arg]
    async for message in call:
        return message  # type: ignore[no-any-return]
    raise AssertionError("stream ended")


async def test_stream_sends_backlog_caught_up_live_and_heartbeats(
    channel: grpc.aio.Channel, tenant: Tenant, timer: ManualTimer
) -> None:
    await send_many(channel, tenant, 3)
    call = stream(channel, tenant, since=1)
    kinds: list[str] = []
    async for message in call:
        kind = message.WhichOneof("message") or ""
        kinds.append(kind)
        if kind == "caught_up":
            assert [(h.identity, h.seq) for h in message.caught_up.heads] == [(tenant.handle, 3)]
            await send(channel, tenant, to="live@example.com")
        elif kind == "heartbeat":
            assert [(h.identity, h.seq) for h in message.heartbeat.heads] == [(tenant.handle, 4)]
            break
        else:
            assert message.event.seq == 1 + kinds.count("event")
            if message.event.seq == 4:  # live: now idle, the next message is a heartbeat
                await timer.until_waiting()
                await timer.advance(HEARTBEAT_S - 0.001)
                assert timer.waiting == 1  # no heartbeat before the period is over
                await timer.advance(0.001)
    call.cancel()
    assert kinds == ["event", "event", "caught_up", "event", "heartbeat"]


async def test_subscribers_that_drop_and_resume_see_every_event_once_in_order(
    app: App, channel: grpc.aio.Channel
) -> None:
    tenant = await make_tenant(app, "big", "big@mailpool.local", tier=Tier.SCALE)
    total = 1000
    rng = random.Random(7)

    async def producer() -> None:
        for start in range(0, total, 50):
            await send(channel, tenant, to=[f"p{n}@example.com" for n in range(start, start + 50)])
            await asyncio.sleep(0)  # let subscribers interleave with the appends

    async def subscriber(number: int) -> list[int]:
        seen: list[int] = []
        while len(seen) < total:
            call = stream(channel, tenant, since=seen[-1] if seen else 0)
            budget = rng.randint(1, 150)
            async for message in call:
                if message.HasField("event"):
                    seen.append(message.event.seq)
                    budget -= 1
                if budget == 0 or len(seen) == total:
                    break
            call.cancel()
        return seen

    results = await asyncio.gather(producer(), *(subscriber(n) for n in range(5)))
    for seen in results[1:]:
        assert seen == list(range(1, total + 1))


async def test_whole_org_stream_interleaves_identities(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    await app.admin.create_identity(
        tenant.org, "bob.acme@mailpool.local", Tier.STARTER, warmup_stage=5
    )
    bob = Tenant(tenant.org, tenant.key, "bob.acme@mailpool.local")
    outsider = await make_tenant(app, "globex", "zed.globex@mailpool.local")
    await send_many(channel, tenant, 2, "a")
    await send(channel, outsider, to="x@example.com")
    call = stream(
        channel, tenant, whole_org=True, org_since=[pb.IdentitySeq(identity=tenant.handle, seq=1)]
    )
    seen: list[tuple[str, int]] = []
    async for message in call:
        if message.HasField("caught_up"):
            heads = {h.identity: h.seq for h in message.caught_up.heads}
            assert heads == {tenant.handle: 2, bob.handle: 0}
            await send_many(channel, bob, 2, "b")
            await send(channel, tenant, to="a9@example.com")
        elif message.HasField("event"):
            seen.append((message.event.identity, message.event.seq))
        if len(seen) == 4:
            break
    call.cancel()
    assert [s for s in seen if s[0] == tenant.handle] == [(tenant.handle, 2), (tenant.handle, 3)]
    assert [s for s in seen if s[0] == bob.handle] == [(bob.handle, 1), (bob.handle, 2)]


async def test_two_hundred_subscribers_all_receive_every_event(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    ready = 0
    all_ready = asyncio.Event()

    async def subscriber() -> list[int]:
        nonlocal ready
        seen: list[int] = []
        call = stream(channel, tenant)
        async for message in call:
            if message.HasField("caught_up"):
                ready += 1
                if ready == 200:
                    all_ready.set()
            elif message.HasField("event"):
                seen.append(message.event.seq)
                if len(seen) == 20:
                    break
        call.cancel()
        return seen

    tasks = [asyncio.create_task(subscriber()) for _ in range(200)]
    await all_ready.wait()
    await send_many(channel, tenant, 20)
    for seen in await asyncio.gather(*tasks):
        assert seen == list(range(1, 21))


async def test_shutdown_ends_open_streams_promptly(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, settings: Settings
) -> None:
    # Streams never end by themselves (the timer does not move), and the grace period
    # is longer than the test may run: stop() returns only if it ends the streams.
    settings.shutdown_grace_s = 3600
    calls = [stream(channel, tenant) for _ in range(3)]
    for call in calls:
        assert (await _first(call)).HasField("caught_up")
    await app.stop()
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _first(call)
        error = rich_error(caught.value)
        assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")


def test_every_event_type_has_a_payload_case() -> None:
    from mailpool_server.service.events import PAYLOAD_TYPES, EventType

    cases = {f.name for f in event_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields}
    assert {t.replace(".", "_") for t in EventType} == cases
    assert set(PAYLOAD_TYPES) == set(EventType)
