"""`mailpool serve` as a real process on a fixed port, for tests that restart the server."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import BinaryIO

STARTUP_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MAILPOOL_DATABASE_URL": database_url,
        "MAILPOOL_DATA_DIR": str(data_dir),
        "MAILPOOL_LOG_LEVEL": "INFO",
    }


class ServerProcess:
    """`mailpool serve --grpc-port PORT` (no dispatcher, no inbound listener)."""

    def __init__(self, env: dict[str, str], grpc_port: int, log: Path) -> None:
        self._env = env
        self.grpc_port = grpc_port
        self.log = log  # the server's JSON log lines, for when a test fails
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = await self._spawn(log)
        assert self._process.stdout is not None
        async with asyncio.timeout(STARTUP_S):
            while line := await self._process.stdout.readline():
                if line.startswith(b"mailpool: gRPC listening on"):
                    return
        raise AssertionError(f"the server did not start (exit {await self._process.wait()})")

    async def _spawn(self, log: BinaryIO) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mailpool_server",
            "serve",
            "--grpc-port",
            str(self.grpc_port),
            "--http-port",
            "0",
            "--inbound-port",
            "-1",
            "--no-dispatcher",
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )

    async def stop(self) -> int:
        """SIGTERM, and wait for the process to exit; its exit code."""
        assert self._process is not None
        if self._process.returncode is None:
            self._process.terminate()
        async with asyncio.timeout(30):
            return await self._process.wait()
