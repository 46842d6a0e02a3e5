"""A loopback webhook receiver for the bench: answers every POST 200 and counts them."""

from __future__ import annotations

import asyncio


class CountingReceiver:
    def __init__(self) -> None:
        self.count = 0
        self.port = 0
        self.changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()  # the relay's keep-alive connection
            await self._server.wait_closed()
            # Python 3.11's wait_closed does not wait for the connections' handlers; one
            # still running when the loop ends is cancelled, and asyncio logs that.
            await asyncio.gather(*self._serving, return_exceptions=True)

    async def until(self, count: int, timeout_s: float) -> bool:
        """Wait until `count` POSTs arrived (False if the time ran out first)."""
        try:
            async with asyncio.timeout(timeout_s):
                while self.count < count:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.count += 1
                self.changed.set()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
