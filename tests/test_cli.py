"""The operator CLI as scripts use it: a real process on a real SQLite file."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {**os.environ, "MAILPOOL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}

    def _run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "mailpool_server", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode == 0) == ok, done.stderr
        return done

    _run.env = env  # type: ignore[attr-defined]
    return _run


@pytest.mark.slow  # one subprocess per command: a CLI end-to-end scenario
def test_admin_round_trip(run) -> None:  # type: ignore[no-untyped-def]
    run("admin", "org", "create", "acme")
    key = run("admin", "key", "create", "--org", "acme").stdout
    assert re.fullmatch(r"sk_live_[0-9a-f]{40}\n", key)
    listing = run("admin", "key", "list", "--org", "acme").stdout
    assert listing.startswith(key[:16] + "…")
    assert "active" in listing
    assert key.strip() not in listing

    created = json.loads(
        run(
            "admin",
            "identity",
            "create",
            "--org",
            "acme",
            "--handle",
            "alice.acme@mailpool.local",
            "--tier",
            "starter",
            "--state",
            "provisioning",
            "--warmup-stage",
            "3",
        ).stdout
    )
    assert created["state"] == "provisioning"
    assert len(created["mailboxes"]) == 3
    assert {m["dailyCap"] for m in created["mailboxes"]} == {30}

    run("admin", "identity", "set-state", "alice.acme@mailpool.local", "active")
    run(
        "admin",
        "mailbox",
        "add",
        "--identity",
        "alice.acme@mailpool.local",
        "--email",
        "alice.chen@tryacme.com",
        "--smtp",
        "smtp://alice:s3cret@127.0.0.1:2525?tls=none",
        "--health",
        "60",
    )
    shown = json.loads(run("admin", "identity", "show", "alice.acme@mailpool.local").stdout)
    assert shown["state"] == "active"
    smtp = [m for m in shown["mailboxes"] if m["email"] == "alice.chen@tryacme.com"]
    assert smtp == [
        {
            "id": smtp[0]["id"],
            "email": "alice.chen@tryacme.com",
            "transport": "smtp",
            "warmupStage": 0,
            "health": 60,
            "dailyCap": 5,
            "sentToday": 0,
        }
    ]

    run("admin", "key", "revoke", "--org", "acme", key[:16])
    assert "revoked" in run("admin", "key", "list", "--org", "acme").stdout


@pytest.mark.slow  # one subprocess per command: a CLI end-to-end scenario
def test_admin_errors_are_clear(run) -> None:  # type: ignore[no-untyped-def]
    assert "no org named 'nope'" in run("admin", "key", "create", "--org", "nope", ok=False).stderr
    run("admin", "org", "create", "acme")
    assert "exists already" in run("admin", "org", "create", "acme", ok=False).stderr
    bad = run(
        "admin",
        "identity",
        "create",
        "--org",
        "acme",
        "--handle",
        "not-an-address",
        "--tier",
        "starter",
        ok=False,
    )
    assert "must look like an email address" in bad.stderr


@pytest.mark.slow  # one subprocess per command: a CLI end-to-end scenario
def test_demo_is_repeatable(run) -> None:  # type: ignore[no-untyped-def]
    first = run("demo").stdout
    second = run("demo").stdout
    keys = [re.search(r"MAILPOOL_KEY=(sk_live_[0-9a-f]+)", out).group(1) for out in (first, second)]  # type: ignore[union-attr]
    assert keys[0] != keys[1]
    assert run("admin", "key", "list", "--org", "demo").stdout.count("active") == 2


def test_serve_prints_its_port_and_stops_on_sigterm(run) -> None:  # type: ignore[no-untyped-def]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailpool_server",
            "serve",
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--inbound-port",
            "0",
            "--lmtp-port",
            "0",
        ],
        env=run.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert re.fullmatch(r"mailpool: gRPC listening on 127\.0\.0\.1:\d+\n", line), line
        line = process.stdout.readline()
        assert re.fullmatch(r"mailpool: HTTP listening on 127\.0\.0\.1:\d+\n", line), line
        for protocol in ("SMTP", "LMTP"):
            line = process.stdout.readline()
            assert re.fullmatch(rf"mailpool: {protocol} listening on 127\.0\.0\.1:\d+\n", line)
        assert process.stdout.readline().startswith("mailpool: dispatching (maildir at ")
        assert process.stdout.readline().startswith("mailpool: relaying webhooks as rly_")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == "mailpool: stopped\n"
    finally:
        process.kill()
        process.communicate()
