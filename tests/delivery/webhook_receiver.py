"""A real HTTP/1.1 webhook receiver on loopback (asyncio.start_server), scripted per
request, that checks every signature with the client library's helper."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailpool_client import verify_signature

# What the receiver does with a request: answer a status, "hang" (never answer; wait
# for the client to hang up) or "kill" (drop the connection and stop listening).
Action = int | str


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    answer: Action
    valid: dict[str, bool] = field(default_factory=dict)  # secret → signature holds
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def seq(self) -> int:
        return int(self.json["seq"])

    @property
    def identity(self) -> str:
        return str(self.json["data"]["identity"])


class Receiver:
    def __init__(self, secrets: list[str], now: Callable[[], float]) -> None:
        self.secrets = secrets  # the secrets to check each signature against
        self._now = now
        self.script: deque[Action] = deque()
        self.default: Action = 200
        self.requests: list[Request] = []
        self.changed = asyncio.Condition()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection (a receiver that died)."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    def kill(self) -> None:
        """Stop listening and drop every connection at once."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def until(self, check: Callable[[], bool], timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(check)

    async def until_requests(self, count: int, timeout_s: float = 20.0) -> None:
        await self.until(lambda: len(self.requests) >= count, timeout_s)

    def answered(self) -> list[Request]:
        """The requests answered with a 2xx."""
        return [r for r in self.requests if isinstance(r.answer, int) and r.answer < 300]

    async def _note(self, request: Request) -> None:
        async with self.changed:
            self.requests.append(request)
            self.changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                answer = self.script.popleft() if self.script else self.default
                request = Request(headers, body, answer)
                signature = headers.get("x-inboxbase-signature", "")
                request.valid = {
                    s: verify_signature(s, signature, body, now=self._now()) for s in self.secrets
                }
                await self._note(request)
                if answer == "hang":
                    await reader.read()  # until the client hangs up
                    request.hung_up.set()
                    async with self.changed:
                        self.changed.notify_all()
                    return
                if answer == "kill":
                    self.kill()
                    return
                writer.write(
                    f"HTTP/1.1 {answer} X\r\nContent-Length: 2\r\n\r\nok".encode("latin-1")
                )
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self._writers.discard(writer)
            writer.close()
