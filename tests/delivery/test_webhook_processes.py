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
    async with relay_process(env):
        await receiver.until(lambda: len(receiver.answered()) >= 10, timeout_s=60)
    assert all(all(r.valid.values()) for r in receiver.requests)
    # Every event delivered (answered 2xx) exactly once, in order per identity...
    assert per_identity(receiver.answered()) == await every_seq(app)
    # ...and the one in flight at the kill is the only event that was sent twice.
    assert len(receiver.requests) == 11
    assert [r.body for r in receiver.requests].count(in_flight.body) == 2


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
        await receiver.until(lambda: len(receiver.answered()) >= 18, timeout_s=60)
    assert all(all(r.valid.values()) for r in receiver.requests)
    assert per_identity(receiver.answered()) == await every_seq(app)
    # The event in flight at the kill is the one duplicate (one endpoint: one in flight).
    assert len(receiver.requests) == 19
