"""The benchmark runs end to end at tiny sizes (a smoke test: no figure is judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_bench_quick_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout)
    for name in (
        "send_grpc_per_s",
        "noop_grpc_per_s",
        "send_vs_noop",
        "send_http_per_s",
        "http_vs_grpc",
        "stream_events_per_s",
        "noop_stream_per_s",
        "replay_vs_noop",
        "idem_replay_per_s",
    ):
        assert result[name] > 0, name
    assert set(result["rss_mb"]) == {
        "send_grpc",
        "idem_replay",
        "send_http",
        "stream_replay",
        "fanout",
        "webhook",
    }
    assert result["metrics"]["on_vs_off"] > 0
    webhook = result["webhook"]
    assert webhook["all_pushed"] and webhook["send_per_s_with_endpoint"] > 0
    fanout = result["fanout"]
    assert fanout["subscribers"] == 20
    assert fanout["p99_ms"] >= fanout["p50_ms"] > 0
