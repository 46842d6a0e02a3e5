"""PostgreSQL connections held open for units of work.

Checking a connection out of SQLAlchemy's pool and back in costs about 280 µs of
Python per unit of work (greenlet hand-offs, pool and reset events): more than the
round trip of the statement it serves, and a send runs three units. A slot takes a
connection out of SQLAlchemy's pool once and keeps it; units take turns on slots,
which costs a list pop. SQLAlchemy still owns each connection (so a cold path's
session can run on it), and a connection that broke is given back invalidated and
its slot opened afresh the next time one is needed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailpool_server.store.driver import PgDriver


@dataclass(eq=False)
class Slot:
    """A connection kept checked out: SQLAlchemy's handle, and the driver's."""

    conn: AsyncConnection
    driver: PgDriver


class Slots:
    """At most `limit` slots, opened as units need them; a unit that finds every slot
    busy waits for one (first come, first served)."""

    def __init__(self, engine: AsyncEngine, limit: int) -> None:
        # SQLAlchemy statements on a slot run inside the unit's own transaction
        # (BEGIN/COMMIT on the driver): its view of the connection is AUTOCOMMIT.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._limit = limit
        self._idle: list[Slot] = []
        self._open = 0
        self._busy = 0
        # Each waiter gets a slot, or None: capacity came free, try to open one.
        self._waiters: deque[asyncio.Future[Slot | None]] = deque()

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def opened(self) -> int:
        return self._open

    async def take(self) -> Slot:
        while True:
            if self._idle:
                self._busy += 1
                return self._idle.pop()
            if self._open < self._limit:
                self._open += 1
                try:
                    opened = await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one(None)
                    raise
                self._busy += 1
                return opened
            waiter: asyncio.Future[Slot | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed_over = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()  # handed over as we gave up: pass it on
                    if handed is not None:
                        self._busy += 1
                        self.give(handed)
                    else:
                        self._wake_one(None)
                else:
                    self._waiters.remove(waiter)
                raise
            if handed_over is not None:
                self._busy += 1
                return handed_over

    def give(self, slot: Slot) -> None:
        """Back from a unit that left its connection outside any transaction."""
        self._busy -= 1
        if not self._wake_one(slot):
            self._idle.append(slot)

    async def discard(self, slot: Slot) -> None:
        """Back from a unit whose connection cannot be trusted: SQLAlchemy's pool drops
        it, and the slot's capacity is free for a new connection."""
        self._busy -= 1
        self._open -= 1
        try:
            await slot.conn.invalidate()
            await slot.conn.close()
        finally:
            self._wake_one(None)

    def _wake_one(self, slot: Slot | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return True
        return False

    async def _connect(self) -> Slot:
        conn = await self._engine.connect()
        try:
            proxied = await conn.get_raw_connection()
            raw = proxied.driver_connection
            assert isinstance(raw, asyncpg.Connection)
        except BaseException:
            await conn.close()
            raise
        return Slot(conn, PgDriver(raw))

    async def close(self) -> None:
        """Give every idle connection back to SQLAlchemy's pool (the engine's dispose
        then closes them)."""
        while self._idle:
            slot = self._idle.pop()
            self._open -= 1
            await slot.conn.close()
