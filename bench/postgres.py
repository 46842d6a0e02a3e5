"""Send on PostgreSQL beside SQLite, in one run: sends/s and server CPU per send on each.

PostgreSQL is a throwaway cluster (scripts/pg.sh) that lives only for this scenario,
seeded like the SQLite database and served by a second `mailpool serve`. The SQLite
round runs right before the PostgreSQL one, with the same sizes, so the two see the
same machine. Without PostgreSQL's programs on PATH the scenario is skipped with a
note in the output.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench.cpu import per_call_ms, tree_cpu_s
from bench.harness import Load, Process, port_of, ratio, started
from bench.loads import unary
from bench.seed import Seeded, seed

PG_SH = Path(__file__).parents[1] / "scripts" / "pg.sh"
PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")
SCALE_DAILY_CAP = 2000  # sends a day of one seeded identity


class ClusterFailed(Exception):
    pass


@dataclass
class Cluster:
    url: str
    folder: Path

    def cpu_s(self) -> float:
        """The postmaster and its backends (backends that exited are in its counters)."""
        pid = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        return tree_cpu_s(pid)


async def _pg_sh(action: str, folder: str) -> str:
    child = await asyncio.create_subprocess_exec(
        str(PG_SH),
        action,
        folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    if child.returncode:
        said = err.decode().strip().splitlines()
        raise ClusterFailed(
            said[-1] if said else f"scripts/pg.sh {action} exited {child.returncode}"
        )
    return out.decode().strip()


@asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    # Not under the bench's own temporary folder: as root the server runs as `postgres`,
    # which must be able to reach its data directory.
    folder = tempfile.mkdtemp(prefix="mailpool-bench-pg-")
    try:
        yield Cluster(await _pg_sh("start", folder), Path(folder))
    finally:
        await _pg_sh("stop", folder)


def _figures(load: Load, server_cpu_s: float, sends: int) -> dict[str, float]:
    return {
        "send_per_s": load.per_s,
        "send_p99_ms": load.p99_ms,
        "cpu_per_send_ms": per_call_ms(server_cpu_s, sends),
    }


async def backends(
    sizes: dict[str, int],
    sqlite: Process,
    sqlite_channel: grpc.aio.Channel,
    sqlite_seeded: Seeded,
    serve: list[str],
    env: dict[str, str],
    sqlite_offset: int,
) -> dict[str, Any]:
    missing = [name for name in PG_PROGRAMS if shutil.which(name) is None]
    if missing:
        return {"skipped": f"PostgreSQL not measured: {', '.join(missing)} not on PATH"}
    sends, conc = sizes["sends"], sizes["concurrency"]
    try:
        async with cluster() as pg:
            seeded = await seed(pg.url, identities=sends // SCALE_DAILY_CAP + 2, backlog=0)
            pg_env = {**env, "MAILPOOL_DATABASE_URL": pg.url}
            async with (
                started(serve, pg_env, ready_lines=2) as server,
                grpc.aio.insecure_channel(f"127.0.0.1:{port_of(server.lines[0])}") as channel,
            ):
                warm_up = min(200, sends)
                await unary(channel, seeded, warm_up, conc, offset=10_000_000)
                await unary(sqlite_channel, sqlite_seeded, warm_up, conc, offset=sqlite_offset)
                before = sqlite.cpu_s()
                on_sqlite = await unary(
                    sqlite_channel, sqlite_seeded, sends, conc, offset=sqlite_offset + warm_up
                )
                sqlite_cpu = sqlite.cpu_s() - before
                before, cluster_before = server.cpu_s(), pg.cpu_s()
                on_pg = await unary(channel, seeded, sends, conc)
                pg_cpu, cluster_cpu = server.cpu_s() - before, pg.cpu_s() - cluster_before
                rss = server.peak_rss_mb()
    except ClusterFailed as failed:
        return {"skipped": f"PostgreSQL not measured: its cluster did not start ({failed})"}
    figures: dict[str, Any] = {
        "sqlite": _figures(on_sqlite, sqlite_cpu, sends),
        "postgres": {
            **_figures(on_pg, pg_cpu, sends),
            # The database's own work per send, beside mailpool's (not part of its target).
            "cluster_cpu_per_send_ms": per_call_ms(cluster_cpu, sends),
            "rss_mb": rss,
        },
    }
    figures["postgres_vs_sqlite"] = {
        "send_per_s": ratio(on_pg.per_s, on_sqlite.per_s),
        "cpu_per_send": ratio(pg_cpu, sqlite_cpu),
    }
    return figures
