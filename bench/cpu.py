"""What a scenario cost the server: CPU time from the kernel's per-process counters.

Throughput on a shared 2-core machine moves with whatever else runs; the CPU seconds a
server process spent serving a measured window do not, so CPU per call is the figure
that compares across runs. Linux only (/proc, like the RSS figures). The counters tick
at SC_CLK_TCK (100 Hz here): 10 ms, small against the seconds a full scenario spends,
coarse in `--quick` runs.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat from the third (state) on: the command name in
    parentheses may hold spaces, so split after its closing parenthesis."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_s(pid: int) -> float:
    """user + system time of every thread of the process, and of the children it has
    waited for (a PostgreSQL backend that exited is counted by its postmaster)."""
    utime, stime, cutime, cstime = (int(f) for f in _stat_fields(pid)[11:15])
    return (utime + stime + cutime + cstime) * TICK_S


def tree_cpu_s(root: int) -> float:
    """The process and its live children (a PostgreSQL cluster: postmaster and backends)."""
    total = process_cpu_s(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry.name))
            if int(fields[1]) == root:
                total += process_cpu_s(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # it exited meanwhile: its time moved to the parent's counters
    return total


async def metered(spent: Callable[[], float], work: Awaitable[T]) -> tuple[T, float]:
    """Run `work`; its result and the CPU seconds `spent` grew by meanwhile."""
    before = spent()
    result = await work
    return result, spent() - before


def per_call_ms(cpu_s: float, calls: int) -> float:
    return round(cpu_s * 1000 / calls, 4)
