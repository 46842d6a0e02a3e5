"""`mailpool admin webhook …` as scripts use it: a real process on a real SQLite file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def run(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "mailpool_server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == code, done.stderr
    return done


@pytest.mark.slow  # one subprocess per command: a CLI end-to-end scenario
def test_webhook_commands(tmp_path: Path) -> None:
    env = {**os.environ, "MAILPOOL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    env.pop("MAILPOOL_WEBHOOK_ALLOW_HTTP_LOOPBACK", None)
    run(env, "admin", "org", "create", "acme")
    refused = run(
        env, "admin", "webhook", "set", "--org", "acme", "--url", "http://127.0.0.1/x", code=1
    )
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "--allow-http-loopback" in refused.stderr
    secret = run(
        env,
        "admin",
        "webhook",
        "set",
        "--org",
        "acme",
        "--url",
        "http://127.0.0.1:9/x",
        "--allow-http-loopback",
    ).stdout
    assert re.fullmatch(r"whsec_[0-9a-f]{48}\n", secret)
    shown = run(env, "admin", "webhook", "show", "--org", "acme").stdout
    assert secret.strip() not in shown
    view = json.loads(shown)
    assert (view["url"], view["status"], view["pausedReason"]) == (
        "http://127.0.0.1:9/x",
        "active",
        None,
    )
    rotated = run(env, "admin", "webhook", "rotate-secret", "--org", "acme").stdout
    assert re.fullmatch(r"whsec_[0-9a-f]{48}\n", rotated) and rotated != secret
    run(env, "admin", "webhook", "disable", "--org", "acme")
    view = json.loads(run(env, "admin", "webhook", "show", "--org", "acme").stdout)
    assert (view["status"], view["pausedReason"]) == ("paused", "operator")
    assert view["pausedAtIso"].endswith("Z")
    again = run(env, "admin", "webhook", "disable", "--org", "acme", code=1)
    assert again.stderr == "mailpool: the webhook of 'acme' is already paused (operator)\n"
    assert "from where it paused" in run(env, "admin", "webhook", "enable", "--org", "acme").stdout
    missing = run(env, "admin", "webhook", "show", "--org", "nope", code=1)
    assert missing.stderr == "mailpool: no org named 'nope'\n"
