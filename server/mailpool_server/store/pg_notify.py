"""Cross-replica wake-ups on PostgreSQL: LISTEN for the notifications each commit that
appends events sends, and hand them to the in-process bus as hints. Notifications are
not replayed (a dropped connection loses them), so a slow safety poll wakes every
reader now and then; readers always re-read the log, so a hint is never trusted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from mailpool_server.service.event_bus import EventBus
from mailpool_server.store.events import NOTIFY_CHANNEL

log = logging.getLogger("mailpool.pg_notify")


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class PgListener:
    def __init__(self, url: str, bus: EventBus, *, safety_poll_s: float = 2.0) -> None:
        self._dsn = asyncpg_dsn(url)
        self._bus = bus
        self._safety_poll_s = safety_poll_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        identity_id, _, seq = payload.rpartition(":")
        if identity_id and seq.isdigit():
            self._bus.events_committed(identity_id, int(seq))

    async def _run(self) -> None:
        connection = None
        while True:
            try:
                if connection is None or connection.is_closed():
                    connection = await asyncpg.connect(self._dsn)
                    await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
                    self._bus.wake_all()  # whatever was missed while not listening
                await asyncio.sleep(self._safety_poll_s)
                self._bus.wake_all()
            except asyncio.CancelledError:
                if connection is not None and not connection.is_closed():
                    await connection.close()
                raise
            except (OSError, asyncpg.PostgresError) as error:
                log.warning(
                    "listen connection lost; retrying", extra={"fields": {"error": str(error)}}
                )
                connection = None
                await asyncio.sleep(1.0)
