"""Two mailpool replicas (separate processes: gRPC + HTTP + dispatcher) on one
PostgreSQL database. Runs when MAILPOOL_TEST_POSTGRES names a server (always in CI)."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from mailpool.v1 import event_service_pb2 as event_pb
from mailpool.v1 import event_service_pb2_grpc as event_grpc
from mailpool_server.app import App
from mailpool_server.config import Settings
from tests.conftest import POSTGRES
from tests.processes import serve
from tests.sending import send, send_call
from tests.support import Tenant, make_tenant, rich_error

pytestmark = [
    pytest.mark.skipif(POSTGRES is None, reason="needs MAILPOOL_TEST_POSTGRES"),
    pytest.mark.slow,
]


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
async def cluster(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Tenant, list[grpc.aio.Channel], Path]]:
    """Two replicas sharing the database and the maildir folder."""
    app = await App.open(Settings(database_url=database_url))
    try:
        tenant = await make_tenant(app, "acme", "alice.acme@mailpool.local")
    finally:
        await app.database.dispose()
    env = {
        **os.environ,
        "MAILPOOL_DATABASE_URL": database_url,
        "MAILPOOL_DATA_DIR": str(tmp_path),
        "MAILPOOL_COLD_GAP_MS": "0",
        "MAILPOOL_LOG_LEVEL": "WARNING",
    }
    with serve(env) as a, serve(env) as b:
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{r['gRPC']}") for r in (a, b)]
        try:
            yield tenant, channels, tmp_path / "maildir"
        finally:
            for channel in channels:
                await channel.close()


async def test_racing_sends_across_replicas_respect_the_cap(
    cluster: tuple[Tenant, list[grpc.aio.Channel], Path],
) -> None:
    tenant, channels, _ = cluster
    numbers = iter(range(300))
    accepted = 0
    rejected = 0

    async def client(channel: grpc.aio.Channel) -> None:
        nonlocal accepted, rejected
        for n in numbers:
            try:
                response = await send(channel, tenant, to=f"race{n}@example.com")
                accepted += response.accepted
            except grpc.aio.AioRpcError as error:
                assert rich_error(error).reason == "CAP_EXCEEDED"
                rejected += 1

    await asyncio.gather(*(client(channels[n % 2]) for n in range(32)))
    assert (accepted, rejected) == (150, 150)


async def test_duplicates_split_across_replicas_execute_once(
    cluster: tuple[Tenant, list[grpc.aio.Channel], Path],
) -> None:
    tenant, channels, _ = cluster
    answers = await asyncio.gather(
        *(
            send_call(channels[n % 2], tenant, to="once@example.com", idempotency_key="k-split")
            for n in range(20)
        )
    )
    assert len({response.SerializeToString(deterministic=True) for response, _ in answers}) == 1
    assert [h.get("idempotent-replayed") for _, h in answers].count(None) == 1


async def collect(channel: grpc.aio.Channel, tenant: Tenant, count: int) -> list[int]:
    stub = event_grpc.EventServiceStub(channel)
    seqs: list[int] = []
    call = stub.StreamEvents(
        event_pb.StreamEventsRequest(identity=tenant.handle), metadata=tenant.metadata
    )
    async for message in call:
        if message.HasField("event") and message.event.type == "email.queued":
            seqs.append(message.event.seq)
            if len(seqs) == count:
                break
    call.cancel()
    return seqs


async def test_a_subscriber_on_one_replica_sees_what_the_other_commits(
    cluster: tuple[Tenant, list[grpc.aio.Channel], Path],
) -> None:
    tenant, (a, b), _ = cluster
    subscriber = asyncio.create_task(collect(a, tenant, 40))
    for start in range(0, 40, 4):
        await send(b, tenant, to=[f"x{n}@example.com" for n in range(start, start + 4)])
    seqs = await asyncio.wait_for(subscriber, 60)
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 40


async def test_two_dispatchers_never_send_a_row_twice(
    cluster: tuple[Tenant, list[grpc.aio.Channel], Path],
) -> None:
    tenant, (a, b), maildir = cluster
    total = 60
    for start in range(0, total, 10):
        channel = a if start % 20 == 0 else b
        await send(channel, tenant, to=[f"d{n}@example.com" for n in range(start, start + 10)])
    stub = event_grpc.EventServiceStub(a)
    sent: Counter[str] = Counter()
    cursor = 0
    while sum(sent.values()) < total:  # long-poll until every row is reported sent
        page = await stub.ListEvents(
            event_pb.ListEventsRequest(identity=tenant.handle, since=cursor, timeout_ms=20_000),
            metadata=tenant.metadata,
        )
        assert page.events, "no delivery within 20 s"
        cursor = page.cursor
        sent.update(e.email_sent.pending_id for e in page.events if e.type == "email.sent")
    assert len(sent) == total
    assert set(sent.values()) == {1}
    files = list(maildir.glob("*/new/*"))
    assert len(files) == total
