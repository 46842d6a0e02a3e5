"""Fan-out: many subscribers of one identity, one event at a time, commit → receipt.

The same client reads mailpool and the minimal fan-out server (bench/fanout_server.py)
with the same number of subscribers; mailpool's p99 over the minimal server's p99 is
the figure fan-out is judged by.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.cpu import per_call_ms
from bench.harness import percentile, ratio
from bench.seed import Seeded
from mailpool.v1 import event_service_pb2 as event_pb
from mailpool.v1 import event_service_pb2_grpc as event_grpc
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool.v1 import send_service_pb2_grpc as send_grpc


@dataclass
class FanoutRun:
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # the server's, from every subscriber caught up to the last receipt
    deliveries: int = 0

    def add(self, other: FanoutRun) -> None:
        self.latencies_ms += other.latencies_ms
        self.cpu_s += other.cpu_s
        self.deliveries += other.deliveries

    def summary(self) -> dict[str, float]:
        return {
            "p50_ms": round(percentile(self.latencies_ms, 0.5), 2),
            "p99_ms": round(percentile(self.latencies_ms, 0.99), 2),
            # Server CPU per message delivered; the Send that publishes each event is
            # in the window too (divided over all its deliveries).
            "cpu_per_delivery_ms": per_call_ms(self.cpu_s, self.deliveries),
        }


async def fanout(
    port: int,
    seeded: Seeded,
    subscribers: int,
    events: int,
    server_cpu_s: Callable[[], float],
    base: int = 0,
) -> FanoutRun:
    """ms from commit to receipt, on every subscriber. The commit has happened when
    the Send's response reaches this process, so that moment stands for it (half a
    round trip late); a subscriber served before the response is read counts 0.
    `base`: the fan-out identity's head seq before this run."""
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(max(1, subscribers // 100))
    ]
    received_at: list[list[float]] = [[] for _ in range(events + 1)]
    everyone: list[asyncio.Event] = [asyncio.Event() for _ in range(events + 1)]

    async def subscriber(number: int) -> None:
        stub = event_grpc.EventServiceStub(channels[number % len(channels)])
        call = stub.StreamEvents(
            event_pb.StreamEventsRequest(identity=seeded.fanout_handle, since=base),
            metadata=seeded.metadata,
        )
        async for message in call:
            seq = message.event.seq - base if message.HasField("event") else 0  # 0: caught up
            received_at[seq].append(time.perf_counter())
            if len(received_at[seq]) == subscribers:
                everyone[seq].set()
            if seq == events:
                break
        call.cancel()

    tasks = [asyncio.create_task(subscriber(n)) for n in range(subscribers)]
    await everyone[0].wait()
    # The harness's own collections would count as latency: its 500 streams' objects are
    # frozen out of them, and none runs while the events are out (10+ ms each, landing
    # on whichever server is being read).
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        stub = send_grpc.SendServiceStub(channels[0])
        run = FanoutRun(deliveries=subscribers * events)
        cpu_before = server_cpu_s()
        for seq in range(1, events + 1):
            await stub.Send(
                send_pb.SendRequest(
                    identity=seeded.fanout_handle, to=[f"f{seq}@example.com"], subject="s", text="t"
                ),
                metadata=seeded.metadata,
            )
            committed = time.perf_counter()
            await everyone[seq].wait()  # one event at a time: latency, not queueing
            run.latencies_ms += [max(0.0, (at - committed) * 1000) for at in received_at[seq]]
        run.cpu_s = server_cpu_s() - cpu_before
    finally:
        gc.enable()
    await asyncio.gather(*tasks)
    for channel in channels:
        await channel.close()
    return run


@dataclass
class FanoutTarget:
    port: int
    cpu_s: Callable[[], float]
    head: int = 0  # events published so far: the next run's `base`


async def against_minimal(
    mailpool: FanoutTarget,
    minimal: FanoutTarget,
    seeded: Seeded,
    subscribers: int,
    events: int,
    rounds: int,
) -> dict[str, Any]:
    """Both servers in alternating rounds (the machine's load drifts), latencies pooled
    per server."""
    runs = {"mailpool": FanoutRun(), "minimal": FanoutRun()}
    for _ in range(rounds):
        for name, target in (("minimal", minimal), ("mailpool", mailpool)):
            run = await fanout(target.port, seeded, subscribers, events, target.cpu_s, target.head)
            target.head += events
            runs[name].add(run)
    ours, theirs = runs["mailpool"].summary(), runs["minimal"].summary()
    return {
        "subscribers": subscribers,
        "events": events * rounds,
        **ours,
        "minimal": theirs,
        "p50_vs_minimal": ratio(ours["p50_ms"], theirs["p50_ms"]),
        "p99_vs_minimal": ratio(ours["p99_ms"], theirs["p99_ms"]),
        "cpu_vs_minimal": ratio(ours["cpu_per_delivery_ms"], theirs["cpu_per_delivery_ms"]),
    }
