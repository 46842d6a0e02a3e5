"""Real `mailpool serve` processes for tests that need separate processes."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run one `mailpool …` command to completion; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "mailpool_server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@contextmanager
def serve(env: dict[str, str], *, dispatcher: bool = True) -> Iterator[dict[str, int]]:
    """Start `mailpool serve` on free ports (no inbound listener); yield its ports by
    protocol ({"gRPC": …, "HTTP": …}); stop it with SIGTERM afterwards."""
    args = ["serve", "--grpc-port", "0", "--http-port", "0", "--inbound-port", "-1"]
    if not dispatcher:
        args.append("--no-dispatcher")
    process = subprocess.Popen(
        [sys.executable, "-m", "mailpool_server", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    ports: dict[str, int] = {}
    try:
        for line in process.stdout:
            if match := re.match(r"mailpool: (\w+) listening on [\d.]+:(\d+)", line):
                ports[match.group(1)] = int(match.group(2))
            if "HTTP" in ports and (not dispatcher or line.startswith("mailpool: dispatching")):
                break
        assert {"gRPC", "HTTP"} <= set(ports), "the server did not start"
        yield ports
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
