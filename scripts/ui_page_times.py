"""How long each dashboard page takes with 10,000 conversations (issue #17: under 200 ms
of server time each). Run by hand; prints one JSON object.

    .venv/bin/python scripts/ui_page_times.py [--conversations 10000] [--rounds 30]

Seeds a fresh SQLite database through mailpool's own send path (a scale identity, 50
recipients per Send, the clock moved a day per 2,000 sends for the daily cap, so every
conversation has its message, timeline item, queued send and email.queued event as in
real use), starts `mailpool serve` on it (no dispatcher, metrics on), signs in and asks
for each page `rounds` times. Reported per page: the client's wall time on loopback
(p50, p95, max) and the server's own mean from its request-duration histogram."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import httpx
from local_serve import serve

from mailpool.v1 import send_service_pb2, send_service_pb2_grpc
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.clock import UTC, FakeClock
from mailpool_server.service.policy import MAX_WARMUP_STAGE, Tier

HANDLE = "pages@mailpool.local"
PER_SEND = 50
PER_DAY = 2000  # a scale identity's daily cap


async def seed(database_url: str, folder: Path, conversations: int) -> tuple[str, str]:
    """The key, and the oldest conversation's id."""
    days = -(-conversations // PER_DAY)
    start = dt.datetime.now(UTC).replace(hour=0, minute=5) - dt.timedelta(days=days - 1)
    clock = FakeClock(start)
    settings = Settings(
        database_url=database_url,
        data_dir=folder,
        grpc_port=0,
        http_port=None,
        inbound_port=None,
        lmtp_port=None,
        run_dispatcher=False,
        run_webhook_relay=False,
    )
    app = await App.open(settings, clock)
    await app.start()
    try:
        await app.admin.create_org("pages")
        key = await app.admin.create_key("pages")
        await app.admin.create_identity("pages", HANDLE, Tier.SCALE, warmup_stage=MAX_WARMUP_STAGE)
        assert app.grpc is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc.port}") as channel:
            stub = send_service_pb2_grpc.SendServiceStub(channel)
            oldest = ""
            for first in range(0, conversations, PER_SEND):
                if first and first % PER_DAY == 0:
                    clock.advance(days=1)
                to = [f"lead{n:06d}@northwind.example" for n in range(first, first + PER_SEND)]
                answer = await stub.Send(
                    send_service_pb2.SendRequest(
                        identity=HANDLE,
                        to=to[: conversations - first],
                        subject="Hello",
                        text="A short note about next quarter.",
                    ),
                    metadata=[("authorization", f"Bearer {key}")],
                )
                oldest = oldest or answer.results[0].conv_id
                clock.advance(seconds=30)
        return key, oldest
    finally:
        await app.stop()


def sign_in(client: httpx.Client, key: str) -> None:
    form = client.get("/ui/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    assert client.post("/ui/signin", data={"csrf": token.group(1), "key": key}).status_code == 303


def server_seconds(metrics: str, route: str) -> tuple[float, float]:
    """(sum, count) of the shim's request durations for one route template."""
    found = {"sum": 0.0, "count": 0.0}
    for line in metrics.splitlines():
        match = re.match(r"mailpool_http_request_duration_seconds_(sum|count)\{(.*)\} (\S+)", line)
        if match and f'route="{route}"' in match.group(2) and 'method="GET"' in match.group(2):
            found[match.group(1)] += float(match.group(3))
    return found["sum"], found["count"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mailpool-ui-pages-"))
    database_url = f"sqlite:///{folder / 'mailpool.db'}"
    started = time.monotonic()
    key, oldest_conv = asyncio.run(seed(database_url, folder, args.conversations))
    seeded_s = time.monotonic() - started
    server = serve(database_url, folder, metrics=True)
    ports, metrics_url = server.ports, server.metrics_url
    assert metrics_url is not None
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{ports['HTTP']}", timeout=30) as client:
            sign_in(client, key)
            identity = client.get(f"/ui/identities/{HANDLE}")
            convs = re.findall(r'data-conv="(conv_[0-9a-f]+)"', identity.text)
            cursor = re.search(r'\?cursor=([^"&]+)', identity.text)
            assert convs and cursor
            pages = {
                "identities": ("/ui/", "/ui/"),
                "identity": (f"/ui/identities/{HANDLE}", "/ui/identities/{handle}"),
                "identity, page 2": (
                    f"/ui/identities/{HANDLE}?cursor={cursor.group(1)}",
                    "/ui/identities/{handle}",
                ),
                "conversation": (
                    f"/ui/identities/{HANDLE}/conversations/{convs[0]}",
                    "/ui/identities/{handle}/conversations/{conv_id}",
                ),
                # The first one sent: its start lies beyond the window of events read.
                "conversation (oldest)": (
                    f"/ui/identities/{HANDLE}/conversations/{oldest_conv}",
                    "/ui/identities/{handle}/conversations/{conv_id}",
                ),
                "live tail page": (
                    f"/ui/identities/{HANDLE}/events",
                    "/ui/identities/{handle}/events",
                ),
            }
            results = {}
            for name, (url, route) in pages.items():
                for _ in range(3):  # warm up
                    assert client.get(url).status_code == 200
                before = server_seconds(httpx.get(metrics_url).text, route)
                times = []
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    assert client.get(url).status_code == 200
                    times.append((time.perf_counter() - t) * 1000)
                after = server_seconds(httpx.get(metrics_url).text, route)
                times.sort()
                results[name] = {
                    "client_p50_ms": round(statistics.median(times), 1),
                    "client_p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
                    "client_max_ms": round(times[-1], 1),
                    "server_mean_ms": round(
                        (after[0] - before[0]) / max(after[1] - before[1], 1) * 1000, 1
                    ),
                }
    finally:
        server.stop()
    print(
        json.dumps(
            {
                "conversations": args.conversations,
                "seeded_s": round(seeded_s, 1),
                "rounds": args.rounds,
                "pages": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
