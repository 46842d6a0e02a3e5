"""`make bench`: mailpool against a no-op baseline, in one run, printed as one JSON object.

Every mailpool figure stands beside a baseline measured in the same run on the same
machine, and the ratio is what to compare across runs (these machines are shared).
`--quick` runs tiny sizes (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench.harness import Process, percentile, port_of, process, run_load
from bench.seed import Seeded, seed
from bench.webhook_receiver import CountingReceiver
from mailpool.v1 import event_service_pb2 as event_pb
from mailpool.v1 import event_service_pb2_grpc as event_grpc
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool.v1 import send_service_pb2_grpc as send_grpc

FULL = {
    "sends": 4000,
    "concurrency": 32,
    "backlog": 100_000,
    "subscribers": 500,
    "fanout_events": 20,
    "rtt_calls": 1000,
}
QUICK = {
    "sends": 200,
    "concurrency": 8,
    "backlog": 2000,
    "subscribers": 20,
    "fanout_events": 3,
    "rtt_calls": 50,
}


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
) -> Any:
    stub = send_grpc.SendServiceStub(channel)
    return await run_load(
        lambda n: stub.Send(send_request(seeded, offset + n), metadata=seeded.metadata),
        total,
        concurrency,
    )


async def http_sends(port: int, seeded: Seeded, total: int, concurrency: int, offset: int) -> Any:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

        async def call(n: int) -> None:
            request = send_request(seeded, offset + n)
            response = await client.post(
                f"/v1/identities/{request.identity}/send",
                headers={
                    "Authorization": f"Bearer {seeded.key}",
                    "Idempotency-Key": request.idempotency_key,
                },
                json={"to": list(request.to), "subject": request.subject, "text": request.text},
            )
            assert response.status_code == 200, response.text

        return await run_load(call, total, concurrency)


async def replay(
    channel: grpc.aio.Channel, seeded: Seeded, backlog: int, handle: str, *, noop: bool
) -> float:
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


async def fanout(
    port: int, seeded: Seeded, subscribers: int, events: int, base: int = 0
) -> dict[str, float]:
    """ms from commit to receipt, on every subscriber. The commit has happened when
    the Send's response reaches this process, so that moment stands for it (half a
    round trip late); a subscriber served before the response is read counts 0.
    `base`: the fanout identity's head seq before this run."""
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
    # The harness's own collections of its 500 streams' objects would count as latency.
    gc.collect()
    gc.freeze()
    stub = send_grpc.SendServiceStub(channels[0])
    latencies: list[float] = []
    for seq in range(1, events + 1):
        await stub.Send(
            send_pb.SendRequest(
                identity=seeded.fanout_handle, to=[f"f{seq}@example.com"], subject="s", text="t"
            ),
            metadata=seeded.metadata,
        )
        committed = time.perf_counter()
        await everyone[seq].wait()  # one event at a time: latency, not queueing
        latencies += [max(0.0, (at - committed) * 1000) for at in received_at[seq]]
    await asyncio.gather(*tasks)
    for channel in channels:
        await channel.close()
    return {
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
    }


async def sends_scenarios(
    out: dict[str, Any],
    real: grpc.aio.Channel,
    base: grpc.aio.Channel,
    http_port: int,
    seeded: Seeded,
    sends: int,
    conc: int,
    scenario: Callable[[str], None],
) -> None:
    noop_load = await unary(base, seeded, sends, conc)
    send_load = await unary(real, seeded, sends, conc)
    scenario("send_grpc")
    out["noop_grpc_per_s"], out["send_grpc_per_s"] = noop_load.per_s, send_load.per_s
    out["send_vs_noop"] = round(send_load.per_s / noop_load.per_s, 3)
    out["send_grpc_latency_ms"] = {"p50": send_load.p50_ms, "p99": send_load.p99_ms}

    replayed = await unary(real, seeded, sends, conc)  # the same keys and bodies again
    scenario("idem_replay")
    out["idem_replay_per_s"] = replayed.per_s
    out["idem_replay_vs_noop"] = round(replayed.per_s / noop_load.per_s, 3)

    http_load = await http_sends(http_port, seeded, sends, conc, offset=sends)
    scenario("send_http")
    out["send_http_per_s"] = http_load.per_s
    out["http_vs_grpc"] = round(http_load.per_s / send_load.per_s, 3)


async def webhook_admin(database: str, verb: str, *args: str) -> bytes:
    """`mailpool admin webhook VERB --org bench …`; its stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mailpool_server",
        "admin",
        "webhook",
        verb,
        "--org",
        "bench",
        *args,
        env={**os.environ, "MAILPOOL_DATABASE_URL": database},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, f"admin webhook {verb} failed"
    return out


async def webhook_scenario(
    out: dict[str, Any],
    real: grpc.aio.Channel,
    grpc_port: int,
    seeded: Seeded,
    sizes: dict[str, int],
    database: str,
    head: int,
) -> None:
    """Send throughput and fan-out without a webhook endpoint, then with an active one
    (the relay in the server pushing every event to a loopback receiver here)."""
    sends, conc = sizes["sends"], sizes["concurrency"]
    subscribers, events = sizes["subscribers"], sizes["fanout_events"]
    without = await unary(real, seeded, sends, conc, offset=20_000_000)
    fan_without = await fanout(grpc_port, seeded, subscribers, events, head)
    receiver = CountingReceiver()
    await receiver.start()
    try:
        url = f"http://127.0.0.1:{receiver.port}/"
        await webhook_admin(database, "set", "--url", url, "--allow-http-loopback")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the server's relay holds the endpoint
            if json.loads(await webhook_admin(database, "show"))["relay"] is not None:
                break
            await asyncio.sleep(0.2)
        started = time.perf_counter()
        with_hook = await unary(real, seeded, sends, conc, offset=30_000_000)
        fan_with = await fanout(grpc_port, seeded, subscribers, events, head + events)
        drained = await receiver.until(sends + events, timeout_s=300)
        elapsed = time.perf_counter() - started
    finally:
        await receiver.stop()
    out["webhook"] = {
        "send_per_s_without_endpoint": without.per_s,
        "send_per_s_with_endpoint": with_hook.per_s,
        "send_with_vs_without": round(with_hook.per_s / without.per_s, 3),
        "send_p99_ms_without_endpoint": without.p99_ms,
        "send_p99_ms_with_endpoint": with_hook.p99_ms,
        "fanout_without_endpoint": fan_without,
        "fanout_with_endpoint": fan_with,
        "pushed": receiver.count,
        "all_pushed": drained,
        "pushed_per_s": round(receiver.count / elapsed, 1),
    }


SCENARIOS = ("send", "stream", "fanout", "webhook", "metrics")
# The metrics scenario alternates servers without and with --metrics-port this many times.
METRICS_ROUNDS = 3


async def metrics_cost(
    out: dict[str, Any], plain: Process, metered: Process, seeded: Seeded, sends: int, conc: int
) -> None:
    """Send throughput of the same server without and with metrics, in alternating
    rounds (the machine's load drifts); the ratio is what to compare."""
    targets = [f"127.0.0.1:{port_of(p.lines[0])}" for p in (plain, metered)]
    rates: list[list[float]] = [[], []]
    async with (
        grpc.aio.insecure_channel(targets[0]) as off,
        grpc.aio.insecure_channel(targets[1]) as on,
    ):
        offset = 20_000_000
        for channel in (off, on):  # warm-up
            await unary(channel, seeded, min(200, sends), conc, offset=offset)
            offset += 1_000_000
        for _ in range(METRICS_ROUNDS):
            for side, channel in enumerate((off, on)):
                load = await unary(channel, seeded, sends, conc, offset=offset)
                offset += 1_000_000
                rates[side].append(load.per_s)
    off_rate, on_rate = (round(sum(r) / len(r), 1) for r in rates)
    out["metrics"] = {
        "send_grpc_per_s_off": off_rate,
        "send_grpc_per_s_on": on_rate,
        "on_vs_off": round(on_rate / off_rate, 3),
        "rounds": METRICS_ROUNDS,
    }


async def measure(
    sizes: dict[str, int],
    mailpool: Process,
    noop: Process,
    seeded: Seeded,
    only: tuple[str, ...] = SCENARIOS,
    database: str = "",
    metered: Process | None = None,
) -> dict[str, Any]:
    grpc_port, http_port = port_of(mailpool.lines[0]), port_of(mailpool.lines[1])
    out: dict[str, Any] = {"sizes": sizes, "rss_mb": {}}
    sends, conc = sizes["sends"], sizes["concurrency"]
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as real,
        grpc.aio.insecure_channel(f"127.0.0.1:{port_of(noop.lines[0])}") as base,
    ):
        await unary(base, seeded, min(200, sends), conc)  # warm-up
        await unary(real, seeded, min(200, sends), conc, offset=10_000_000)

        def scenario(name: str) -> None:
            out["rss_mb"][name] = mailpool.peak_rss_mb()
            mailpool.reset_peak_rss()

        mailpool.reset_peak_rss()
        if "send" in only:
            await sends_scenarios(out, real, base, http_port, seeded, sends, conc, scenario)
        if "stream" in only:
            backlog = sizes["backlog"]
            noop_stream = await replay(base, seeded, backlog, "", noop=True)
            stream = await replay(real, seeded, backlog, seeded.backlog_handle, noop=False)
            scenario("stream_replay")
            out["noop_stream_per_s"], out["stream_events_per_s"] = noop_stream, stream
            out["replay_vs_noop"] = round(stream / noop_stream, 3)

        if metered is not None:
            await metrics_cost(out, mailpool, metered, seeded, sends, conc)

        rtt = await run_load(
            lambda n: send_grpc.SendServiceStub(base).Send(
                send_request(seeded, n), metadata=seeded.metadata
            ),
            sizes["rtt_calls"],
            1,
        )
    if "fanout" in only:
        fan = await fanout(grpc_port, seeded, sizes["subscribers"], sizes["fanout_events"])
        scenario("fanout")
        out["fanout"] = {
            "subscribers": sizes["subscribers"],
            **fan,
            "unary_rtt_p50_ms": rtt.p50_ms,
            "unary_rtt_p99_ms": rtt.p99_ms,
            "p50_vs_unary": round(fan["p50_ms"] / rtt.p50_ms, 2),
            "p99_vs_unary": round(fan["p99_ms"] / rtt.p99_ms, 2),
        }
    if "webhook" in only:
        head = sizes["fanout_events"] if "fanout" in only else 0
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            await webhook_scenario(out, channel, grpc_port, seeded, sizes, database, head)
        scenario("webhook")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help="comma-separated scenarios to run, of: " + ", ".join(SCENARIOS),
    )
    args = parser.parse_args()
    only = tuple(name for name in args.only.split(",") if name)
    if unknown := set(only) - set(SCENARIOS):
        parser.error(f"--only: unknown scenario {sorted(unknown)[0]!r}")
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="mailpool-bench-") as folder:
        database = f"sqlite:///{Path(folder) / 'bench.db'}"
        # Scale identities send 2000 a day each: enough of them for every round (the
        # webhook scenario sends twice more, without and with an endpoint).
        rounds = 3 + (4 if "webhook" in only else 0)
        rounds += 2 * (METRICS_ROUNDS + 1) if "metrics" in only else 0
        identities = sizes["sends"] * rounds // 2000 + 2
        backlog = sizes["backlog"] if "stream" in only else 0
        seeded = asyncio.run(seed(database, identities=identities, backlog=backlog))
        env = {
            "MAILPOOL_DATABASE_URL": database,
            "MAILPOOL_LOG_LEVEL": "WARNING",
            "MAILPOOL_COLD_GAP_MS": "0",
        }
        serve = [
            "-m",
            "mailpool_server",
            "serve",
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--inbound-port",
            "-1",
            # The API path alone: delivery is another workload.
            "--no-dispatcher",
        ]
        with (
            process(serve, env, ready_lines=2) as mailpool,
            process(["-m", "bench.noop_server"], env, ready_lines=1) as noop,
            contextlib.ExitStack() as more,
        ):
            metered = None
            if "metrics" in only:
                # The same server with metrics on (their port announced as a third line).
                metered = more.enter_context(
                    process([*serve, "--metrics-port", "0"], env, ready_lines=3)
                )
            result = asyncio.run(measure(sizes, mailpool, noop, seeded, only, database, metered))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
