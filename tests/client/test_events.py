"""Event streams: backlog, markers, whole-org, and resuming after disconnects (including a
real server process restarted on the same port and database)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from mailpool.v1 import event_pb2
from mailpool_client import (
    CaughtUp,
    Disconnected,
    EventItem,
    EventStream,
    Heartbeat,
    MailpoolClient,
    NotFound,
    Reason,
    RetryPolicy,
    StreamItem,
    Unavailable,
)
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.models import IdentityState
from mailpool_server.service.policy import MAX_WARMUP_STAGE, Tier
from tests.client.conftest import FAST_RECONNECT, grpc_target, make_client
from tests.client.fakes import Script, ScriptedEvents, caught_up, events
from tests.client.servers import ServerProcess, free_port, server_env
from tests.support import Tenant, make_tenant

WAIT_S = 30.0


async def send_to(client: MailpoolClient, handle: str, *recipients: str) -> None:
    await client.send(handle, to=list(recipients), subject="Hi", text="x")


async def take(stream: AsyncIterator[StreamItem], count: int) -> list[StreamItem]:
    """The next `count` items that are not heartbeats (those come whenever it is quiet)."""
    items: list[StreamItem] = []
    async with asyncio.timeout(WAIT_S):
        while len(items) < count:
            item = await anext(stream)
            if not isinstance(item, Heartbeat):
                items.append(item)
    return items


def seqs(items: list[StreamItem]) -> list[tuple[str, int]]:
    return [(i.event.identity, i.event.seq) for i in items if isinstance(i, EventItem)]


async def test_backlog_caught_up_live_events_and_heartbeats(
    client: MailpoolClient, tenant: Tenant
) -> None:
    h = tenant.handle
    await send_to(client, h, "a@example.com", "b@example.com", "c@example.com")
    async with client.events(h, include_markers=True) as stream:
        backlog = await take(stream, 4)
        assert seqs(backlog) == [(h, 1), (h, 2), (h, 3)]
        assert backlog[3] == CaughtUp({h: 3})
        await send_to(client, h, "d@example.com")
        [live] = await take(stream, 1)
        assert isinstance(live, EventItem) and live.event.seq == 4
        assert live.event.email_queued.recipient == "d@example.com"
        async with asyncio.timeout(WAIT_S):
            while not isinstance(item := await anext(stream), Heartbeat):
                pass
        assert item == Heartbeat({h: 4})
        assert stream.positions == {h: 4} and stream.reconnects == 0


async def test_bare_events_from_a_position(client: MailpoolClient, tenant: Tenant) -> None:
    await send_to(client, tenant.handle, "a@example.com", "b@example.com", "c@example.com")
    async with client.events(tenant.handle.upper(), since=1) as stream:
        async with asyncio.timeout(WAIT_S):
            got = [await anext(stream), await anext(stream)]
    assert all(isinstance(e, event_pb2.Event) for e in got)
    assert [e.seq for e in got] == [2, 3]
    assert stream.positions == {tenant.handle: 3}


async def test_org_events_follow_every_identity_from_their_positions(
    app: App, client: MailpoolClient, tenant: Tenant
) -> None:
    a, b, c = tenant.handle, "bob.acme@mailpool.local", "carol.acme@mailpool.local"
    await app.admin.create_identity(
        tenant.org, b, Tier.STARTER, IdentityState.ACTIVE, MAX_WARMUP_STAGE
    )
    await send_to(client, a, "x1@example.com", "x2@example.com")
    await send_to(client, b, "y1@example.com")
    async with client.org_events({a: 1}, include_markers=True) as stream:
        backlog = await take(stream, 3)
        assert sorted(seqs(backlog)) == [(a, 2), (b, 1)]
        assert backlog[2] == CaughtUp({a: 2, b: 1})
        # An identity created after subscribing is followed from its first event.
        await app.admin.create_identity(
            tenant.org, c, Tier.STARTER, IdentityState.ACTIVE, MAX_WARMUP_STAGE
        )
        await send_to(client, c, "z1@example.com")
        await send_to(client, a, "x3@example.com")
        # Seq order holds per identity; across identities a stream that reads after
        # both commits may give either first (the contract promises no more).
        assert sorted(seqs(await take(stream, 2))) == [(a, 3), (c, 1)]
        assert stream.positions == {a: 3, b: 1, c: 1}


async def test_closing_the_client_ends_its_streams(app: App, tenant: Tenant) -> None:
    client = make_client(grpc_target(app), tenant.key)
    await send_to(client, tenant.handle, "a@example.com")
    stream = client.events(tenant.handle)
    async with asyncio.timeout(WAIT_S):
        assert (await anext(stream)).seq == 1
        waiting = asyncio.ensure_future(anext(stream))
        await client.close()
        with pytest.raises(StopAsyncIteration):
            await waiting
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_identity(tenant.handle)


async def test_a_stream_error_that_reconnecting_cannot_fix_is_raised(
    client: MailpoolClient,
) -> None:
    with pytest.raises(NotFound) as caught:
        await take(client.events("nobody@mailpool.local", include_markers=True), 1)
    assert caught.value.reason == Reason.IDENTITY_NOT_FOUND


async def test_reconnects_resume_from_the_last_seq_and_drop_resent_events() -> None:
    h = "alice.acme@mailpool.local"
    scripts: list[Script] = [
        [*events(h, [1, 2, 3]), "unavailable"],
        # Resends 2 and 3; then the server cancels the call, as one does whose grace
        # period ran out at shutdown.
        [*events(h, [2, 3, 4, 5]), caught_up({h: 5}), "cancelled"],
        [*events(h, [5, 6]), caught_up({h: 6}), "silence"],
    ]
    async with ScriptedEvents(scripts) as server:
        client = make_client(f"127.0.0.1:{server.port}", "sk_test")
        async with client, client.events(h, include_markers=True) as stream:
            items = await take(stream, 10)
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["EventItem"] * 3 + ["Disconnected"] + ["EventItem"] * 2 + [
        "CaughtUp",
        "Disconnected",
        "EventItem",
        "CaughtUp",
    ]
    assert seqs(items) == [(h, n) for n in range(1, 7)]
    assert [r.since for r in server.requests] == [0, 3, 5]
    first = items[3]
    assert isinstance(first, Disconnected) and first.positions == {h: 3}
    assert isinstance(first.error, Unavailable) and first.error.message == "scripted failure"
    assert stream.reconnects == 2


async def test_org_reconnects_resume_per_identity() -> None:
    a, b = "a@mailpool.local", "b@mailpool.local"
    scripts: list[Script] = [
        [*events(a, [1, 2]), *events(b, [1]), "unavailable"],
        [*events(a, [1, 2, 3]), *events(b, [1, 2]), caught_up({a: 3, b: 2}), "silence"],
    ]
    async with ScriptedEvents(scripts) as server:
        client = make_client(f"127.0.0.1:{server.port}", "sk_test")
        async with client, client.org_events({a: 0, b: 0}) as stream, asyncio.timeout(WAIT_S):
            got = [await anext(stream) for _ in range(5)]
    assert [(e.identity, e.seq) for e in got] == [(a, 1), (a, 2), (b, 1), (a, 3), (b, 2)]
    second = server.requests[1]
    assert second.whole_org and {s.identity: s.seq for s in second.org_since} == {a: 2, b: 1}


async def test_a_silent_connection_is_replaced() -> None:
    h = "alice.acme@mailpool.local"
    scripts: list[Script] = [[*events(h, [1]), "silence"], [*events(h, [1, 2]), "silence"]]
    async with ScriptedEvents(scripts) as server:
        client = make_client(f"127.0.0.1:{server.port}", "sk_test", stream_idle_timeout=1.0)
        async with client, client.events(h, include_markers=True) as stream:
            items = await take(stream, 3)
    assert isinstance(items[1], Disconnected)
    assert items[1].error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert seqs(items) == [(h, 1), (h, 2)] and server.requests[1].since == 1


async def test_a_caught_up_marker_does_not_reset_the_backoff() -> None:
    """A stopping server still answers the backlog before it ends the stream: only an event
    or a heartbeat shows a healthy connection, so these failures count as consecutive."""
    h = "alice.acme@mailpool.local"
    scripts: list[Script] = [[caught_up({h: 0}), "unavailable"]]
    policy = dataclasses.replace(FAST_RECONNECT, max_attempts=3)
    async with ScriptedEvents(scripts) as server:
        client = make_client(f"127.0.0.1:{server.port}", "sk_test", reconnect=policy)
        async with client, client.events(h, include_markers=True) as stream:
            with pytest.raises(Unavailable) as caught:
                await take(stream, 10)
    assert caught.value.attempts == 3 and len(server.requests) == 3


async def test_reconnecting_gives_up_after_the_policy_s_attempts(tenant: Tenant) -> None:
    policy = dataclasses.replace(FAST_RECONNECT, max_attempts=3)
    async with make_client(f"127.0.0.1:{free_port()}", tenant.key, reconnect=policy) as client:
        stream = client.events(tenant.handle, include_markers=True)
        with pytest.raises(Unavailable) as caught:
            await take(stream, 3)  # two Disconnected, then the third failure is raised
    assert caught.value.attempts == 3


@pytest.mark.slow  # two server processes
async def test_events_resume_across_a_server_restart(settings: Settings, tmp_path: Path) -> None:
    """A real `mailpool serve` is stopped with SIGTERM while a subscriber follows it, and a
    new one is started on the same port and database: the subscriber gets every seq once,
    in order, without doing anything itself."""
    app = await App.open(settings)
    tenant = await make_tenant(app, "acme", "alice.acme@mailpool.local")
    await app.database.dispose()
    env = server_env(settings.database_url, tmp_path)
    server = ServerProcess(env, free_port(), tmp_path / "server.log")
    await server.start()
    # Sends while the channel finds the new server again: patient, still bounded.
    patient = RetryPolicy(max_attempts=None, deadline=WAIT_S, initial_backoff=0.05, max_backoff=0.5)
    client = make_client(f"127.0.0.1:{server.grpc_port}", tenant.key, retry=patient)
    seen: list[int] = []
    disconnects: list[Disconnected] = []
    failures: list[BaseException] = []
    progress = asyncio.Condition()

    async def follow(stream: EventStream[StreamItem]) -> None:
        try:
            async with stream:
                async for item in stream:
                    if isinstance(item, Disconnected):
                        disconnects.append(item)
                    elif isinstance(item, EventItem):
                        async with progress:
                            seen.append(item.event.seq)
                            progress.notify_all()
        except Exception as error:  # the stream gave up: fail the test now, with it
            async with progress:
                failures.append(error)
                progress.notify_all()

    async def seen_up_to(seq: int) -> None:
        async with asyncio.timeout(WAIT_S), progress:
            await progress.wait_for(lambda: len(seen) >= seq or bool(failures))
        if failures:
            raise failures[0]

    try:
        async with client:
            await send_to(client, tenant.handle, "a@example.com", "b@example.com")
            follower = asyncio.create_task(
                follow(client.events(tenant.handle, include_markers=True))
            )
            await send_to(client, tenant.handle, "c@example.com")
            await seen_up_to(3)

            assert await server.stop() == 0
            await server.start()  # same port, same database
            await send_to(client, tenant.handle, "d@example.com", "e@example.com")
            await seen_up_to(5)
            await send_to(client, tenant.handle, "f@example.com")  # live, after the resume
            await seen_up_to(6)
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
    finally:
        await server.stop()
    assert seen == [1, 2, 3, 4, 5, 6]
    assert disconnects and disconnects[0].positions == {tenant.handle: 3}
    # A stopping server ends its streams with UNAVAILABLE (SHUTTING_DOWN); a stream its
    # shutdown grace cuts before that status is written ends CANCELLED. Both mean "the
    # server went away": nothing else may end a stream here.
    stopped = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert all(d.error.code in stopped for d in disconnects)
