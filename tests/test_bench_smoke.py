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
        "bare_send_per_s",
        "send_vs_bare",
        "floor_send_per_s",
        "send_http_per_s",
        "http_vs_grpc",
        "stream_events_per_s",
        "noop_stream_per_s",
        "replay_vs_noop",
        "idem_replay_per_s",
    ):
        assert result[name] > 0, name
    assert result["send_http_retried"] >= 0
    assert set(result["rss_mb"]) == {
        "send_grpc",
        "idem_replay",
        "send_http",
        "stream_replay",
        "fanout",
        "webhook",
    }
    # CPU per call beside its baseline's; at --quick sizes a figure may be under one
    # clock tick (0), and a ratio over it None.
    cpu = result["cpu_per_call_ms"]
    for name in (
        "noop_grpc",
        "send_grpc",
        "bare_send",
        "floor_send",
        "idem_replay",
        "send_http",
        "noop_stream_event",
        "stream_event",
        "minimal_fanout_delivery",
        "fanout_delivery",
    ):
        assert cpu[name] >= 0, name
    assert cpu["send_grpc"] > 0
    for name in (
        "send_grpc_vs_noop",
        "send_grpc_vs_bare",
        "send_grpc_vs_floor",
        "idem_replay_vs_noop",
        "send_http_vs_grpc",
        "stream_event_vs_noop",
        "fanout_delivery_vs_minimal",
    ):
        assert name in cpu, name
    metrics = result["metrics"]
    assert metrics["on_vs_off"] > 0 and metrics["cpu_per_send_ms_on"] > 0
    webhook = result["webhook"]
    assert webhook["all_pushed"] and webhook["send_per_s_with_endpoint"] > 0
    assert webhook["cpu_per_send_ms_with_endpoint"] > 0
    fanout = result["fanout"]
    assert fanout["subscribers"] == 20
    # A subscriber served before the Send's response is read counts 0 ms (bench/fanout.py),
    # so with 20 subscribers a median of 0 is a fast server, not a broken figure.
    assert fanout["events"] > 0
    assert fanout["p99_ms"] >= fanout["p50_ms"] >= 0
    assert fanout["minimal"]["p99_ms"] >= fanout["minimal"]["p50_ms"] >= 0
    assert "p99_vs_minimal" in fanout and fanout["cpu_per_delivery_ms"] >= 0
    backends = result["backends"]
    if "skipped" in backends:  # no PostgreSQL programs here: a note instead of figures
        assert backends["skipped"].startswith("PostgreSQL not measured")
    else:
        for backend in ("sqlite", "postgres"):
            assert backends[backend]["send_per_s"] > 0 and backends[backend]["cpu_per_send_ms"] > 0
        assert backends["postgres_vs_sqlite"]["send_per_s"] > 0
