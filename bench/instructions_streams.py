"""CPU instructions per streamed event, counted by valgrind in a real server beside its
baseline: `python -m bench.instructions --scenario replay|fanout`.

Unlike the send count (one process, gRPC left out), these run the server as `make bench`
does, gRPC included, under `valgrind --tool=callgrind --instr-atstart=no`, and count
only while the measured events flow: `callgrind_control -i on` just before, `-i off`
once the client has them all. Every thread of the server is counted (gRPC's poller too);
the kernel is not (socket writes are system time, which `make bench` sees and this does
not). The baseline server is counted the same way in the same run:
- replay: one StreamEvents reading a backlog from seq 0, against the no-op stream;
- fanout: subscribers of one identity, one Send at a time, against the minimal fan-out
  server (the publishing Send is in mailpool's count, as in `make bench`).
mailpool runs with a heartbeat of an hour (MAILPOOL_HEARTBEAT_S), so that no stream
re-checks its key inside the window: 500 of them landing in one run moved a count by 10%.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.fanout import fanout
from bench.harness import SERVE, port_of, serve_env
from bench.loads import replay
from bench.seed import Seeded, seed

ROOT = Path(__file__).resolve().parent.parent
WARM_UP_EVENTS = 1000  # replayed before counting: imports, caches and first pages
WARM_UP_FANOUT = 3  # events fanned out before counting


@dataclass
class Counted:
    """A server under callgrind whose counting the caller switches on and off."""

    popen: subprocess.Popen[str]
    port: int
    out: Path

    def counting(self, on: bool) -> None:
        flag = "on" if on else "off"
        subprocess.run(
            ["callgrind_control", "-i", flag, str(self.popen.pid)], check=True, capture_output=True
        )


@contextmanager
def _under_callgrind(
    args: list[str], server: Path, env: dict[str, str], ready_lines: int, total: list[int]
) -> Iterator[Counted]:
    """The server process under callgrind; `total` gets its count once it has exited."""
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile("w+") as stderr:
        out = Path(folder) / "callgrind.out"
        popen = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--cache-sim=no",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                *args,
            ],
            env={
                **os.environ,
                **env,
                "PYTHONPATH": os.pathsep.join([str(server), str(ROOT)]),
                "PYTHONHASHSEED": "0",
            },
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,  # a file: valgrind and the server may say more than a pipe holds
            text=True,
        )
        assert popen.stdout is not None and popen.stdin is not None
        try:
            lines = [popen.stdout.readline().strip() for _ in range(ready_lines)]
            if not all(lines):
                raise RuntimeError(f"{args} did not start under valgrind")
            yield Counted(popen, port_of(lines[0]), out)
        finally:
            popen.terminate()
            popen.stdin.close()
            popen.wait(timeout=120)
            popen.stdout.close()
        stderr.seek(0)
        errors = stderr.read()
        for line in errors.splitlines():
            if "Collected :" in line:
                total.append(int(line.rsplit(":", 1)[1]))
                return
        raise RuntimeError(f"callgrind printed no total:\n{errors[-2000:]}")


def _replay_count(server: Path, seeded: Seeded, database: str, events: int, noop: bool) -> int:
    env = serve_env(database)
    args, ready = (["-m", "bench.noop_server"], 1) if noop else (SERVE, 2)
    total: list[int] = []
    with _under_callgrind(args, server, env, ready, total) as counted:

        async def run() -> None:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{counted.port}") as channel:
                handle = seeded.backlog_handle
                await replay(channel, seeded, WARM_UP_EVENTS, handle, noop=noop)
                counted.counting(True)
                await replay(channel, seeded, events, handle, noop=noop)
                counted.counting(False)

        asyncio.run(run())
    return total[0]


def _fanout_count(
    server: Path, seeded: Seeded, database: str, subscribers: int, events: int, minimal: bool
) -> int:
    env = {**serve_env(database), "MAILPOOL_HEARTBEAT_S": "3600"}
    args, ready = (["-m", "bench.fanout_server"], 1) if minimal else (SERVE, 2)
    total: list[int] = []
    with _under_callgrind(args, server, env, ready, total) as counted:
        switches = iter((True, False))

        def switch() -> float:
            # fanout() reads the server's CPU just before its first Send and once every
            # subscriber has the last event: the counting window.
            counted.counting(next(switches))
            return 0.0

        async def run() -> None:
            await fanout(counted.port, seeded, subscribers, WARM_UP_FANOUT, lambda: 0.0)
            await fanout(counted.port, seeded, subscribers, events, switch, WARM_UP_FANOUT)

        asyncio.run(run())
    return total[0]


def count_streams(scenario: str, server: Path, size: int, subscribers: int) -> dict[str, float]:
    """Instructions per event (replay: `size` events) or per delivery (fanout: `size`
    events to `subscribers`), mailpool's beside its baseline's."""
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite:///{Path(folder) / 'instructions.db'}"
        backlog = max(WARM_UP_EVENTS, size) if scenario == "replay" else 0
        seeded = asyncio.run(seed(database, identities=1, backlog=backlog))
        if scenario == "replay":
            per = size
            ours = _replay_count(server, seeded, database, size, noop=False)
            theirs = _replay_count(server, seeded, database, size, noop=True)
        else:
            per = size * subscribers
            ours = _fanout_count(server, seeded, database, subscribers, size, minimal=False)
            theirs = _fanout_count(server, seeded, database, subscribers, size, minimal=True)
    unit = "event" if scenario == "replay" else "delivery"
    baseline = "noop_stream" if scenario == "replay" else "minimal_fanout"
    return {
        f"instructions_per_{unit}": round(ours / per),
        f"{baseline}_instructions_per_{unit}": round(theirs / per),
        "vs_baseline": round(ours / theirs, 3),
    }
