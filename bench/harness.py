"""Load generation: N calls from C concurrent workers, timed on the client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.cpu import process_cpu_s

# How much of a failed child's stderr to show (characters).
STDERR_TAIL = 4000
# `mailpool serve` as every scenario runs it: free ports, no inbound listener, and the API
# path alone (delivery is another workload). It prints two lines once it serves.
SERVE = [
    "-m",
    "mailpool_server",
    "serve",
    "--grpc-port",
    "0",
    "--http-port",
    "0",
    "--inbound-port",
    "-1",
    "--no-dispatcher",
]


def serve_env(database: str) -> dict[str, str]:
    """The environment the bench's servers run with: its database, quiet logs, and no
    pacing between cold sends (a bench sends thousands from few mailboxes)."""
    return {
        "MAILPOOL_DATABASE_URL": database,
        "MAILPOOL_LOG_LEVEL": "WARNING",
        "MAILPOOL_COLD_GAP_MS": "0",
    }


@dataclass
class Load:
    per_s: float
    p50_ms: float
    p99_ms: float
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, latencies_s: list[float], seconds: float) -> Load:
        """Calls that took `latencies_s` each and `seconds` in all."""
        return cls(
            per_s=round(len(latencies_s) / seconds, 1),
            p50_ms=round(statistics.median(latencies_s) * 1000, 3),
            p99_ms=round(percentile(latencies_s, 0.99) * 1000, 3),
            seconds=seconds,
            latencies_s=latencies_s,
        )


def pooled(loads: list[Load]) -> Load:
    """Rounds of the same calls as one load: the rate over their summed time, the
    percentiles over every call."""
    return Load.of(
        [latency for load in loads for latency in load.latencies_s],
        sum(load.seconds for load in loads),
    )


def ratio(mine: float, baseline: float, digits: int = 3) -> float | None:
    """mine / baseline; None when the baseline measured nothing (a coarse --quick figure)."""
    return round(mine / baseline, digits) if baseline else None


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_load(call: Callable[[int], Awaitable[object]], total: int, concurrency: int) -> Load:
    """Call `call(i)` for i in range(total) from `concurrency` workers."""
    numbers = iter(range(total))
    latencies: list[float] = []

    async def worker() -> None:
        for n in numbers:
            started = time.perf_counter()
            await call(n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Load.of(latencies, time.perf_counter() - started)


@dataclass
class Process:
    popen: subprocess.Popen[str]
    lines: list[str]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_s(self) -> float:
        """CPU seconds the process has spent so far (bench/cpu.py)."""
        return process_cpu_s(self.pid)

    def reset_peak_rss(self) -> None:
        """Linux: writing 5 to clear_refs resets VmHWM, so each scenario has its own peak."""
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return round(int(match.group(1)) / 1024, 1) if match else -1.0


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], ready_lines: int) -> Iterator[Process]:
    """A child Python process that prints `ready_lines` lines when it is serving. Its
    stderr is kept aside, and its tail printed if the run fails while it serves."""
    with tempfile.TemporaryFile("w+") as errors:
        popen = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert popen.stdout is not None
        try:
            lines = [popen.stdout.readline().strip() for _ in range(ready_lines)]
            if not all(lines):
                raise RuntimeError(f"{args} did not start")
            yield Process(popen, lines)
        except BaseException:
            errors.seek(0)
            if said := errors.read()[-STDERR_TAIL:]:
                print(f"--- stderr of {' '.join(args)}, its end:\n{said}", file=sys.stderr)
            raise
        finally:
            popen.terminate()
            if popen.stdin:
                popen.stdin.close()
            popen.wait(timeout=30)
            popen.stdout.close()


@contextlib.asynccontextmanager
async def started(args: list[str], env: dict[str, str], ready_lines: int) -> AsyncIterator[Process]:
    """process() from async code: waiting for the child's ready lines, and for it to
    exit, happens on a thread, so the event loop keeps its channels serviced."""
    manager = process(args, env, ready_lines)
    child = await asyncio.to_thread(manager.__enter__)
    try:
        yield child
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def port_of(line: str) -> int:
    match = re.search(r":(\d+)\b", line) or re.fullmatch(r"(\d+)", line)
    assert match, line
    return int(match.group(1))
