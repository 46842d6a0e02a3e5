"""CPU instructions per send, counted by valgrind: a figure that does not move with
whatever else the shared machine runs, for comparing two versions of the send path.

`python -m bench.instructions` runs keyed sends in one process (the API-key check, the
Send servicer's decoding and encoding, the service and the SQLite store with its group
commit, 32 at a time; gRPC itself left out) under `valgrind --tool=callgrind`, twice:
with the warm-up sends only, and with `--sends` more. The difference over `--sends` is
what one send costs, start-up and warm-up left out. `--against REV` counts a git
revision's server the same way (in a temporary worktree, with this tree's bench and
client stubs) and prints the ratio. Needs valgrind on PATH; each count takes a minute
or two (callgrind runs ~50x slower than native).

`--scenario replay` and `--scenario fanout` count a streamed event instead, in a real
server beside its baseline (bench/instructions_streams.py); `--against` works for them too.

Instructions are not time (a cache miss costs more than an add), but they count what a
change removes without the noise: `python -m bench` still measures the time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 100
CONCURRENCY = 32


async def _sends(count: int) -> None:
    """The child: WARMUP sends, then `count` more (each its own recipient and key)."""
    from bench.loads import send_request
    from bench.seed import seed
    from mailpool_server.app import App
    from mailpool_server.config import Settings
    from mailpool_server.rpc.encode import send_response
    from mailpool_server.rpc.send_servicer import decode

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/instructions.db"
        seeded = await seed(url, identities=4, backlog=0)
        app = await App.open(Settings(database_url=url))
        services = app.grpc_services
        authorization = dict(seeded.metadata)["authorization"]
        requests = [send_request(seeded, n) for n in range(WARMUP + count)]

        async def send(n: int) -> None:
            # The interceptor's key check, then what the Send servicer does.
            org_id = await services.authenticator.org_for(authorization)
            outcome = await services.sender.send(org_id, decode(requests[n]))
            assert send_response(outcome.result).accepted == 1

        async def run(first: int, last: int) -> None:
            numbers = iter(range(first, last))

            async def client() -> None:
                for n in numbers:
                    await send(n)

            await asyncio.gather(*(client() for _ in range(CONCURRENCY)))

        await run(0, WARMUP)
        await run(WARMUP, WARMUP + count)
        await app.stop()


def _count(server: Path, sends: int) -> int:
    """Instructions of a child process making WARMUP + `sends` sends with `server`."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(server), str(ROOT)]),
            "PYTHONHASHSEED": "0",
        }
        command = [
            "valgrind",
            "--tool=callgrind",
            "--cache-sim=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            str(sends),
        ]
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"valgrind run failed:\n{done.stderr[-2000:]}")
        for line in done.stderr.splitlines():
            if "Collected :" in line:
                return int(line.rsplit(":", 1)[1])
        raise RuntimeError("callgrind printed no total")


def per_send(server: Path, sends: int) -> int:
    return round((_count(server, sends) - _count(server, 0)) / sends)


def _measure(args: argparse.Namespace, server: Path) -> dict[str, float]:
    if args.scenario == "send":
        return {"instructions_per_send": per_send(server, args.sends)}
    from bench.instructions_streams import count_streams

    size = args.events or (20_000 if args.scenario == "replay" else 10)
    return count_streams(args.scenario, server, size, args.subscribers)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("--scenario", choices=("send", "replay", "fanout"), default="send")
    parser.add_argument("--sends", type=int, default=300, help="send: sends counted")
    parser.add_argument(
        "--events", type=int, help="replay: events replayed (20000); fanout: events (10)"
    )
    parser.add_argument("--subscribers", type=int, default=500, help="fanout: subscribers")
    parser.add_argument("--against", metavar="REV", help="a git revision to compare with")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        asyncio.run(_sends(args.child))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not on PATH (Debian: apt install valgrind)")
    figures: dict[str, object] = {"scenario": args.scenario}
    here = _measure(args, ROOT / "server")
    figures.update(here)
    if args.against:
        with tempfile.TemporaryDirectory() as folder:
            tree = Path(folder) / "tree"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), args.against],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            try:
                there = _measure(args, tree / "server")
            finally:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)],
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                )
        headline = next(iter(here))  # instructions per send, event or delivery
        figures[f"{headline}_at_{args.against}"] = there[headline]
        figures["ratio"] = round(here[headline] / there[headline], 3)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
