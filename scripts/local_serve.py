"""`mailpool serve` on a scratch folder for the scripts run by hand (screenshots.py,
ui_page_times.py): API and dashboard only, with the ports it announces."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LocalServer:
    process: subprocess.Popen[str]
    ports: dict[str, int] = field(default_factory=dict)  # "HTTP", "gRPC", …
    metrics_url: str | None = None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def serve(database_url: str, folder: Path, *, metrics: bool = False) -> LocalServer:
    """Start it and return once it listens (with metrics: once it names their URL)."""
    env = {
        **os.environ,
        "MAILPOOL_DATABASE_URL": database_url,
        "MAILPOOL_DATA_DIR": str(folder),
        "MAILPOOL_LOG_LEVEL": "WARNING",
    }
    args = ["--grpc-port", "0", "--http-port", "0", "--inbound-port", "-1"]
    args += ["--no-dispatcher", "--no-webhook-relay"]
    args += ["--metrics-port", "0"] if metrics else []
    process = subprocess.Popen(
        [sys.executable, "-m", "mailpool_server", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    server = LocalServer(process)
    for line in process.stdout:
        if match := re.match(r"mailpool: (\w+) listening on [\d.]+:(\d+)", line):
            server.ports[match.group(1)] = int(match.group(2))
        if match := re.match(r"mailpool: metrics at (\S+)", line):
            server.metrics_url = match.group(1)
        if "HTTP" in server.ports and (server.metrics_url or not metrics):
            return server
    raise RuntimeError("mailpool serve ended before it listened")
