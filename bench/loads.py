"""The calls the scenarios make: keyed unary sends over gRPC and HTTP, backlog replays."""

from __future__ import annotations

import time

import grpc
import httpx

from bench.harness import Load, run_load
from bench.seed import Seeded
from mailpool.v1 import event_service_pb2 as event_pb
from mailpool.v1 import event_service_pb2_grpc as event_grpc
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool.v1 import send_service_pb2_grpc as send_grpc


def send_request(seeded: Seeded, n: int) -> send_pb.SendRequest:
    return send_pb.SendRequest(
        identity=seeded.handles[n % len(seeded.handles)],
        to=[f"lead{n:06d}@example.com"],
        subject="Quick question",
        text="Hi there, a short note.",
        idempotency_key=f"bench-{n}",
    )


async def unary(
    channel: grpc.aio.Channel, seeded: Seeded, total: int, concurrency: int, offset: int = 0
) -> Load:
    stub = send_grpc.SendServiceStub(channel)
    return await run_load(
        lambda n: stub.Send(send_request(seeded, offset + n), metadata=seeded.metadata),
        total,
        concurrency,
    )


# A kept-alive connection the server closes just as a request goes out on it fails
# that request in transport (HTTP/1.1 keep-alive's race). Each send carries its
# Idempotency-Key, so sending it again is safe, and is what a client of the contract
# does; the run counts how often it happened.
TRANSPORT_RETRIES = 2
_CONNECTION_DROPPED = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


async def http_sends(
    port: int, seeded: Seeded, total: int, concurrency: int, offset: int
) -> tuple[Load, int]:
    """The load, and how many requests were sent again after a dropped connection."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    retried = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

        async def call(n: int) -> None:
            nonlocal retried
            request = send_request(seeded, offset + n)
            for attempt in range(TRANSPORT_RETRIES + 1):
                try:
                    response = await client.post(
                        f"/v1/identities/{request.identity}/send",
                        headers={
                            "Authorization": f"Bearer {seeded.key}",
                            "Idempotency-Key": request.idempotency_key,
                        },
                        json={
                            "to": list(request.to),
                            "subject": request.subject,
                            "text": request.text,
                        },
                    )
                    break
                except _CONNECTION_DROPPED:
                    if attempt == TRANSPORT_RETRIES:
                        raise
                    retried += 1
            assert response.status_code == 200, response.text

        load = await run_load(call, total, concurrency)
    return load, retried


async def replay(
    channel: grpc.aio.Channel, seeded: Seeded, backlog: int, handle: str, *, noop: bool
) -> float:
    """Events per second of one subscription reading `backlog` events from seq 0."""
    stub = event_grpc.EventServiceStub(channel)
    request = (
        event_pb.StreamEventsRequest(since=backlog)
        if noop
        else event_pb.StreamEventsRequest(identity=handle)
    )
    started = time.perf_counter()
    received = 0
    call = stub.StreamEvents(request, metadata=seeded.metadata)
    async for message in call:
        if message.HasField("event"):
            received += 1
        if received == backlog:
            break
    elapsed = time.perf_counter() - started
    call.cancel()
    assert received == backlog
    return round(backlog / elapsed, 1)
