"""The relay as real `mailpool relay` processes: one killed (SIGKILL) while a delivery
is in flight and another started; two replicas on one PostgreSQL sharing an endpoint.
Events are appended to the log from this process (as any replica's sends would)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.clock import now_ms
from mailpool_server.service.events import EmailNoReply, NewEvent
from mailpool_server.service.policy import Tier
from mailpool_server.service.webhook_admin import WebhookAdmin
from tests.conftest import POSTGRES
from tests.delivery.webhook_receiver import Receiver, Request
from tests.support import make_tenant

pytestmark = pytest.mark.slow

HANDLES = ("alice.acme@mailpool.local", "bob.acme@mailpool.local")


@asynccontextmanager
async def relay_process(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """`mailpool relay`, once it says it relays; stopped (if still alive) afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mailpool_server",
        "relay",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            while b"relaying webhooks as" not in (line := await process.stdout.readline()):
                assert line, "the relay did not start"
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)


@pytest.fixture
async def world(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[App, Receiver, dict[str, str]]]:
    """Two identities of one org whose endpoint posts to a receiver; the env a relay
    process needs (a 2 s lease, so a dead relay's endpoint is taken over quickly)."""
    app = await App.open(Settings(database_url=database_url, data_dir=tmp_path))
    receiver = Receiver([], now=time.time)
    await receiver.start()
    try:
        await make_tenant(app, "acme", HANDLES[0])
        await app.admin.create_identity("acme", HANDLES[1], Tier.STARTER)
        admin = WebhookAdmin(app.store, app.clock, allow_http_loopback=True)
        _, secret = await admin.set("acme", receiver.url)
        assert secret is not None
        receiver.secrets.append(secret)
        env = {
            **os.environ,
            "MAILPOOL_DATABASE_URL": database_url,
            "MAILPOOL_DATA_DIR": str(tmp_path),
            "MAILPOOL_WEBHOOK_LEASE_S": "2",
            "MAILPOOL_LOG_LEVEL": "WARNING",
        }
        yield app, receiver, env
    finally:
        await receiver.stop()
        await app.database.dispose()


async def append(app: App, count: int) -> None:
    """`count` events, alternating between the two identities, one commit each."""
    for n in range(count):
        async with app.store.write() as tx:
            identity = await tx.identity_by_handle(HANDLES[n % 2], lock=True)
            assert identity is not None
            await tx.append_events(
                identity, [NewEvent(None, EmailNoReply(waited_ms=n))], now_ms(app.clock)
            )


def once_each(seqs: dict[str, list[int]]) -> dict[str, list[int]]:
    """Each identity's seqs with a repeat of the seq just before dropped: a delivery
    resent after a crash repeats the last one, never an older one."""
    return {
        handle: [seq for n, seq in enumerate(got) if n == 0 or got[n - 1] != seq]
        for handle, got in seqs.items()
    }


def per_identity(requests: list[Request]) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = defaultdict(list)
    for request in requests:
        seqs[request.identity].append(request.seq)
    return dict(seqs)


async def every_seq(app: App) -> dict[str, list[int]]:
    """Every seq of both logs, once each, in order per identity."""
    async with app.store.read() as tx:
        identities = [await tx.identity_by_handle(handle) for handle in HANDLES]
        heads = await tx.head_seqs([i.id for i in identities if i is not None])
    return {i.handle: list(range(1, heads[i.id] + 1)) for i in identities if i is not None}


async def test_a_relay_killed_mid_delivery_loses_nothing_and_repeats_only_the_event_in_flight(
    world: tuple[App, Receiver, dict[str, str]],
) -> None:
    app, receiver, env = world
    receiver.script.extend([200, 200, 200, "hang"])  # the fourth stays in flight
    async with relay_process(env) as first:
        await append(app, 10)
        await receiver.until_requests(4, timeout_s=30)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    in_flight = receiver.requests[3]
    await receiver.until(in_flight.hung_up.is_set)
    expected = await every_seq(app)
    async with relay_process(env):
        await receiver.until(
            lambda: once_each(per_identity(receiver.answered())) == expected, timeout_s=60
        )
    assert all(all(r.valid.values()) for r in receiver.requests)
    # Every event delivered (answered 2xx), in order per identity; a repeat can only
    # be an event in flight at the kill, sent again right where the new relay resumes.
    assert once_each(per_identity(receiver.answered())) == await every_seq(app)
    # In flight at the kill: at most one event per identity being pushed (two here),
    # the hung one among them; nothing else is sent twice.
    bodies = [r.body for r in receiver.requests]
    assert bodies.count(in_flight.body) == 2
    assert 11 <= len(receiver.requests) <= 10 + len(HANDLES)


@pytest.mark.skipif(POSTGRES is None, reason="needs MAILPOOL_TEST_POSTGRES")
@pytest.mark.parametrize("backend", ["postgres"], indirect=False)
async def test_two_replicas_on_postgres_deliver_each_event_once_in_order(
    world: tuple[App, Receiver, dict[str, str]], backend: str
) -> None:
    app, receiver, env = world
    async with relay_process(env) as a, relay_process(env) as b:
        await append(app, 12)
        await receiver.until(lambda: len(receiver.answered()) >= 12, timeout_s=60)
        # No crash so far: not one duplicate.
        assert len(receiver.requests) == 12
        assert per_identity(receiver.requests) == await every_seq(app)

        # Now the replica holding the lease dies with a delivery in flight.
        receiver.script.append("hang")
        await append(app, 1)
        await receiver.until_requests(13, timeout_s=30)
        endpoint = await WebhookAdmin(app.store, app.clock).show("acme")
        owner = endpoint.endpoint.lease_owner
        assert owner is not None
        holder = a if owner.startswith(f"rly_{a.pid}_") else b
        assert owner.startswith(f"rly_{holder.pid}_")
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        await append(app, 5)
        expected = await every_seq(app)
        await receiver.until(
            lambda: once_each(per_identity(receiver.answered())) == expected, timeout_s=60
        )
    assert all(all(r.valid.values()) for r in receiver.requests)
    assert once_each(per_identity(receiver.answered())) == await every_seq(app)
    # The events in flight at the kill are the only duplicates: the hung one, and at
    # most one more (one event in flight per identity; two identities here).
    assert 19 <= len(receiver.requests) <= 18 + len(HANDLES)
