"""`make bench`: mailpool against baselines, in one run, printed as one JSON object.

Every mailpool figure stands beside a baseline measured in the same run on the same
machine (a no-op gRPC server; a bare-driver send server making a send's writes with
`sqlite3` alone, and the same with the reads no correct send can skip; a minimal fan-out
server), and the ratio is what to compare across
runs (these machines are shared). Each scenario also reports what it
cost the server process in CPU per call (`cpu_per_call_ms`, from /proc), beside what
the same calls cost the baseline's process. `--quick` runs tiny sizes (a smoke test,
not a measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench.cpu import metered, per_call_ms
from bench.fanout import FanoutTarget, against_minimal, fanout
from bench.harness import SERVE, Load, Process, pooled, port_of, process, ratio, run_load, serve_env
from bench.loads import http_sends, replay, send_request, unary
from bench.postgres import SCALE_DAILY_CAP, backends
from bench.seed import Seeded, seed
from bench.webhook_receiver import CountingReceiver
from mailpool.v1 import send_service_pb2_grpc as send_grpc

FULL = {
    "sends": 4000,
    # Rounds of sends alternating with the no-op server, pooled: one of each put
    # send_vs_noop at 0.214 and 0.166 in two runs of the same code.
    "send_rounds": 3,
    "concurrency": 32,
    "backlog": 100_000,
    "subscribers": 500,
    "fanout_events": 20,
    # Rounds alternating with the minimal server, pooled: with two, one garbage collection
    # or burst of other work on this shared machine moved the p99 ratio by 0.5.
    "fanout_rounds": 5,
    # Backlog replays alternating with the no-op stream, pooled: one of each put
    # replay_vs_noop at 0.69 and 0.93 in two runs of the same code.
    "stream_rounds": 3,
    "rtt_calls": 1000,
}
QUICK = {
    "sends": 200,
    "send_rounds": 1,
    "concurrency": 8,
    "backlog": 2000,
    "subscribers": 20,
    "fanout_events": 3,
    "fanout_rounds": 1,
    "stream_rounds": 1,
    "rtt_calls": 50,
}
# Idempotency keys are bench-<offset + n>: each round of sends starts at its own offset,
# so that only the idempotent-replay round repeats keys.
WARM_UP_OFFSET = 10_000_000
WEBHOOK_OFFSETS = (20_000_000, 30_000_000)
POSTGRES_SQLITE_OFFSET = 40_000_000
METRICS_OFFSET = 50_000_000


async def sends_scenarios(
    out: dict[str, Any],
    real: grpc.aio.Channel,
    base: grpc.aio.Channel,
    http_port: int,
    seeded: Seeded,
    sizes: dict[str, int],
    scenario: Callable[[str], None],
    servers: tuple[Process, Process, Process, Process],
) -> None:
    """`send_rounds` rounds of keyed sends alternating with the same calls to the no-op
    server and to the two bare-driver send servers (pooled), a round replaying the first
    round's keys, and a round over HTTP."""
    mailpool, noop, bare, floor = servers
    sends, conc, rounds = sizes["sends"], sizes["concurrency"], sizes["send_rounds"]
    cpu = out["cpu_per_call_ms"]
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{port_of(bare.lines[0])}") as bare_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{port_of(floor.lines[0])}") as floor_channel,
    ):
        targets = {
            "noop": (noop, base),
            "bare": (bare, bare_channel),
            "floor": (floor, floor_channel),
            "send": (mailpool, real),
        }
        for channel in (bare_channel, floor_channel):
            await unary(channel, seeded, min(200, sends), conc, offset=WARM_UP_OFFSET)
        loads: dict[str, list[Load]] = {name: [] for name in targets}
        spent: dict[str, float] = dict.fromkeys(targets, 0.0)
        for round_ in range(rounds):
            for name, (server, channel) in targets.items():
                load, seconds = await metered(
                    server.cpu_s, unary(channel, seeded, sends, conc, round_ * sends)
                )
                loads[name].append(load)
                spent[name] += seconds
    noop_load, bare_load, floor_load, send_load = (pooled(loads[name]) for name in targets)
    noop_cpu, send_cpu = spent["noop"], spent["send"]
    scenario("send_grpc")
    out["send_rounds"] = rounds
    out["noop_grpc_per_s"], out["send_grpc_per_s"] = noop_load.per_s, send_load.per_s
    out["send_vs_noop"] = ratio(send_load.per_s, noop_load.per_s)
    out["send_grpc_latency_ms"] = {"p50": send_load.p50_ms, "p99": send_load.p99_ms}
    cpu["noop_grpc"] = per_call_ms(noop_cpu, sends * rounds)
    cpu["send_grpc"] = per_call_ms(send_cpu, sends * rounds)
    cpu["send_grpc_vs_noop"] = ratio(send_cpu, noop_cpu)
    # The prototype: the same writes on the bare driver, group-committed alike;
    # and the floor: that prototype with the reads no correct send can skip (--reads).
    out["bare_send_per_s"] = bare_load.per_s
    out["send_vs_bare"] = ratio(send_load.per_s, bare_load.per_s)
    cpu["bare_send"] = per_call_ms(spent["bare"], sends * rounds)
    cpu["send_grpc_vs_bare"] = ratio(send_cpu, spent["bare"])
    out["floor_send_per_s"] = floor_load.per_s
    cpu["floor_send"] = per_call_ms(spent["floor"], sends * rounds)
    cpu["send_grpc_vs_floor"] = ratio(send_cpu, spent["floor"])
    # What one round cost each server, beside the single rounds below.
    noop_cpu, send_cpu = noop_cpu / rounds, send_cpu / rounds

    # The same keys and bodies again: every call is answered from the stored result.
    replayed, replay_cpu = await metered(mailpool.cpu_s, unary(real, seeded, sends, conc))
    scenario("idem_replay")
    out["idem_replay_per_s"] = replayed.per_s
    out["idem_replay_vs_noop"] = ratio(replayed.per_s, noop_load.per_s)
    cpu["idem_replay"] = per_call_ms(replay_cpu, sends)
    cpu["idem_replay_vs_noop"] = ratio(replay_cpu, noop_cpu)

    (http_load, http_retried), http_cpu = await metered(
        mailpool.cpu_s, http_sends(http_port, seeded, sends, conc, offset=sends * rounds)
    )
    scenario("send_http")
    out["send_http_per_s"] = http_load.per_s
    out["send_http_retried"] = http_retried
    out["http_vs_grpc"] = ratio(http_load.per_s, send_load.per_s)
    # The shim runs in the server's process: its parsing and its gRPC hop count here.
    cpu["send_http"] = per_call_ms(http_cpu, sends)
    cpu["send_http_vs_grpc"] = ratio(http_cpu, send_cpu)


async def stream_scenario(
    out: dict[str, Any],
    real: grpc.aio.Channel,
    base: grpc.aio.Channel,
    seeded: Seeded,
    backlog: int,
    rounds: int,
    servers: tuple[Process, Process],
) -> None:
    """`rounds` replays of the whole backlog from seq 0, alternating with the no-op
    stream; rates and CPU pooled over the rounds."""
    mailpool, noop = servers
    seconds = {"noop": 0.0, "mailpool": 0.0}
    cpu_s = {"noop": 0.0, "mailpool": 0.0}
    for _ in range(rounds):
        for name, process_, channel, handle in (
            ("noop", noop, base, ""),
            ("mailpool", mailpool, real, seeded.backlog_handle),
        ):
            rate, spent = await metered(
                process_.cpu_s, replay(channel, seeded, backlog, handle, noop=name == "noop")
            )
            seconds[name] += backlog / rate
            cpu_s[name] += spent
    events = backlog * rounds
    noop_stream = round(events / seconds["noop"], 1)
    stream = round(events / seconds["mailpool"], 1)
    out["stream_rounds"] = rounds
    out["noop_stream_per_s"], out["stream_events_per_s"] = noop_stream, stream
    out["replay_vs_noop"] = ratio(stream, noop_stream)
    cpu = out["cpu_per_call_ms"]
    cpu["noop_stream_event"] = per_call_ms(cpu_s["noop"], events)
    cpu["stream_event"] = per_call_ms(cpu_s["mailpool"], events)
    cpu["stream_event_vs_noop"] = ratio(cpu_s["mailpool"], cpu_s["noop"])


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
    mailpool: Process,
    seeded: Seeded,
    sizes: dict[str, int],
    database: str,
    head: int,
) -> None:
    """Send throughput and fan-out without a webhook endpoint, then with an active one
    (the relay in the server pushing every event to a loopback receiver here). With
    the endpoint, the sends' CPU window lasts until the relay has pushed them all."""
    sends, conc = sizes["sends"], sizes["concurrency"]
    subscribers, events = sizes["subscribers"], sizes["fanout_events"]
    grpc_port = port_of(mailpool.lines[0])
    without, without_cpu = await metered(
        mailpool.cpu_s, unary(real, seeded, sends, conc, offset=WEBHOOK_OFFSETS[0])
    )
    fan_without = await fanout(grpc_port, seeded, subscribers, events, mailpool.cpu_s, head)
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
        started, cpu_before = time.perf_counter(), mailpool.cpu_s()
        with_hook = await unary(real, seeded, sends, conc, offset=WEBHOOK_OFFSETS[1])
        sends_pushed = await receiver.until(sends, timeout_s=300)
        elapsed, with_cpu = time.perf_counter() - started, mailpool.cpu_s() - cpu_before
        fan_with = await fanout(
            grpc_port, seeded, subscribers, events, mailpool.cpu_s, head + events
        )
        drained = sends_pushed and await receiver.until(sends + events, timeout_s=300)
    finally:
        await receiver.stop()
    out["webhook"] = {
        "send_per_s_without_endpoint": without.per_s,
        "send_per_s_with_endpoint": with_hook.per_s,
        "send_with_vs_without": ratio(with_hook.per_s, without.per_s),
        "send_p99_ms_without_endpoint": without.p99_ms,
        "send_p99_ms_with_endpoint": with_hook.p99_ms,
        "cpu_per_send_ms_without_endpoint": per_call_ms(without_cpu, sends),
        "cpu_per_send_ms_with_endpoint": per_call_ms(with_cpu, sends),
        "cpu_with_vs_without": ratio(with_cpu, without_cpu),
        "fanout_without_endpoint": fan_without.summary(),
        "fanout_with_endpoint": fan_with.summary(),
        "pushed": receiver.count,
        "all_pushed": drained,
        "pushed_per_s": round(sends / elapsed, 1),
    }


SCENARIOS = ("send", "stream", "postgres", "fanout", "webhook", "metrics")
# The metrics scenario alternates servers without and with --metrics-port this many times.
METRICS_ROUNDS = 3


async def metrics_cost(
    out: dict[str, Any],
    plain: Process,
    with_metrics: Process,
    seeded: Seeded,
    sends: int,
    conc: int,
) -> None:
    """Send throughput of the same server without and with metrics, in alternating
    rounds (the machine's load drifts); the ratio is what to compare."""
    servers = (plain, with_metrics)
    targets = [f"127.0.0.1:{port_of(p.lines[0])}" for p in servers]
    rates: list[list[float]] = [[], []]
    cpu_s = [0.0, 0.0]
    async with (
        grpc.aio.insecure_channel(targets[0]) as off,
        grpc.aio.insecure_channel(targets[1]) as on,
    ):
        offset = METRICS_OFFSET
        for channel in (off, on):  # warm-up
            await unary(channel, seeded, min(200, sends), conc, offset=offset)
            offset += 1_000_000
        for _ in range(METRICS_ROUNDS):
            for side, channel in enumerate((off, on)):
                load, spent = await metered(
                    servers[side].cpu_s, unary(channel, seeded, sends, conc, offset=offset)
                )
                offset += 1_000_000
                rates[side].append(load.per_s)
                cpu_s[side] += spent
    off_rate, on_rate = (round(sum(r) / len(r), 1) for r in rates)
    calls = sends * METRICS_ROUNDS
    out["metrics"] = {
        "send_grpc_per_s_off": off_rate,
        "send_grpc_per_s_on": on_rate,
        "on_vs_off": ratio(on_rate, off_rate),
        "cpu_per_send_ms_off": per_call_ms(cpu_s[0], calls),
        "cpu_per_send_ms_on": per_call_ms(cpu_s[1], calls),
        "cpu_on_vs_off": ratio(cpu_s[1], cpu_s[0]),
        "rounds": METRICS_ROUNDS,
    }


@dataclass
class Servers:
    """The processes one run measures; the optional ones only for their scenarios."""

    mailpool: Process
    noop: Process
    minimal_fanout: Process | None = None
    bare_send: Process | None = None
    floor_send: Process | None = None  # bare_send with --reads
    with_metrics: Process | None = None
    serve: list[str] = field(default_factory=list)  # how to start another mailpool
    env: dict[str, str] = field(default_factory=dict)


async def measure(
    sizes: dict[str, int],
    servers: Servers,
    seeded: Seeded,
    only: tuple[str, ...] = SCENARIOS,
    database: str = "",
) -> dict[str, Any]:
    mailpool, noop = servers.mailpool, servers.noop
    grpc_port, http_port = port_of(mailpool.lines[0]), port_of(mailpool.lines[1])
    out: dict[str, Any] = {"sizes": sizes, "rss_mb": {}, "cpu_per_call_ms": {}}
    sends, conc = sizes["sends"], sizes["concurrency"]
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as real,
        grpc.aio.insecure_channel(f"127.0.0.1:{port_of(noop.lines[0])}") as base,
    ):
        await unary(base, seeded, min(200, sends), conc)  # warm-up
        await unary(real, seeded, min(200, sends), conc, offset=WARM_UP_OFFSET)

        def scenario(name: str) -> None:
            out["rss_mb"][name] = mailpool.peak_rss_mb()
            mailpool.reset_peak_rss()

        mailpool.reset_peak_rss()
        if "send" in only:
            assert servers.bare_send is not None and servers.floor_send is not None
            await sends_scenarios(
                out,
                real,
                base,
                http_port,
                seeded,
                sizes,
                scenario,
                (mailpool, noop, servers.bare_send, servers.floor_send),
            )
        if "stream" in only:
            await stream_scenario(
                out, real, base, seeded, sizes["backlog"], sizes["stream_rounds"], (mailpool, noop)
            )
            scenario("stream_replay")

        if servers.with_metrics is not None:
            await metrics_cost(out, mailpool, servers.with_metrics, seeded, sends, conc)

        if "postgres" in only:
            out["backends"] = await backends(
                sizes, mailpool, real, seeded, servers.serve, servers.env, POSTGRES_SQLITE_OFFSET
            )
            mailpool.reset_peak_rss()

        rtt = await run_load(
            lambda n: send_grpc.SendServiceStub(base).Send(
                send_request(seeded, n), metadata=seeded.metadata
            ),
            sizes["rtt_calls"],
            1,
        )
    target = FanoutTarget(grpc_port, mailpool.cpu_s)
    if servers.minimal_fanout is not None:
        minimal = servers.minimal_fanout
        fan = await against_minimal(
            target,
            FanoutTarget(port_of(minimal.lines[0]), minimal.cpu_s),
            seeded,
            sizes["subscribers"],
            sizes["fanout_events"],
            sizes["fanout_rounds"],
        )
        scenario("fanout")
        out["fanout"] = {
            **fan,
            "unary_rtt_p50_ms": rtt.p50_ms,
            "unary_rtt_p99_ms": rtt.p99_ms,
            "p50_vs_unary": ratio(fan["p50_ms"], rtt.p50_ms, 2),
            "p99_vs_unary": ratio(fan["p99_ms"], rtt.p99_ms, 2),
        }
        cpu = out["cpu_per_call_ms"]
        cpu["minimal_fanout_delivery"] = fan["minimal"]["cpu_per_delivery_ms"]
        cpu["fanout_delivery"] = fan["cpu_per_delivery_ms"]
        cpu["fanout_delivery_vs_minimal"] = fan["cpu_vs_minimal"]
    if "webhook" in only:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            await webhook_scenario(out, channel, mailpool, seeded, sizes, database, target.head)
        scenario("webhook")
    return out


def copy_database(database: str, path: Path) -> str:
    """A copy of a SQLite database (sqlite3's online backup: the WAL's pages included)."""
    with (
        contextlib.closing(sqlite3.connect(database.removeprefix("sqlite:///"))) as source,
        contextlib.closing(sqlite3.connect(path)) as copy,
    ):
        source.backup(copy)
    return f"sqlite:///{path}"


def identities_needed(sizes: dict[str, int], only: tuple[str, ...]) -> int:
    """Scale identities send 2000 a day each: enough of them for every round of sends on
    the SQLite database (warm-ups included)."""
    # gRPC rounds, replay (no new sends, counted anyway), HTTP
    rounds = sizes["send_rounds"] + 2 if "send" in only else 0
    rounds += 2 if "webhook" in only else 0  # without and with an endpoint
    rounds += 1 if "postgres" in only else 0  # the SQLite side
    rounds += 2 * METRICS_ROUNDS if "metrics" in only else 0
    warm_ups = 4  # the first, the metrics servers', the SQLite side of postgres
    return (sizes["sends"] * rounds + min(200, sizes["sends"]) * warm_ups) // SCALE_DAILY_CAP + 2


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
        backlog = sizes["backlog"] if "stream" in only else 0
        seeded = asyncio.run(
            seed(database, identities=identities_needed(sizes, only), backlog=backlog)
        )
        env = serve_env(database)
        serve = SERVE
        with (
            process(serve, env, ready_lines=2) as mailpool,
            process(["-m", "bench.noop_server"], env, ready_lines=1) as noop,
            contextlib.ExitStack() as more,
        ):
            servers = Servers(mailpool, noop, serve=serve, env=env)
            if "send" in only:
                # Each bare server on a copy of the seeded database: two writers on one file
                # would wait on each other's locks, and mailpool's writer would reload
                # the mailboxes after each of the other's commits.
                servers.bare_send, servers.floor_send = (
                    more.enter_context(
                        process(
                            ["-m", "bench.bare_send_server", *flags],
                            serve_env(copy_database(database, Path(folder) / f"{name}.db")),
                            ready_lines=1,
                        )
                    )
                    for name, flags in (("bare", []), ("floor", ["--reads"]))
                )
            if "fanout" in only:
                servers.minimal_fanout = more.enter_context(
                    process(["-m", "bench.fanout_server"], env, ready_lines=1)
                )
            if "metrics" in only:
                # The same server with metrics on (their port announced as a third line).
                servers.with_metrics = more.enter_context(
                    process([*serve, "--metrics-port", "0"], env, ready_lines=3)
                )
            result = asyncio.run(measure(sizes, servers, seeded, only, database))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
