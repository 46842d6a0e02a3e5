"""PostgreSQL connections held open for units of work.

Checking a connection out of SQLAlchemy's pool and back in costs about 280 µs of
Python per unit of work (greenlet hand-offs, pool and reset events): more than the
round trip of the statement it serves, and a send runs three units. A slot takes a
connection out of SQLAlchemy's pool once and keeps it; units take turns on slots,
which costs a list pop. SQLAlchemy still owns each connection (so a cold path's
session can run on it), and a connection that broke is given back invalidated and
its slot opened afresh the next time one is needed.

Every connection a slot took out is checked back in, whatever happens to the unit
using it: SQLAlchemy cannot close a checked-out connection that is merely forgotten
(it only warns when the collector finds it). So a connection being opened for a
taker that gives up is kept for the next one, closing a broken connection finishes
even if its unit is cancelled, and `close` waits for the units still running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from functools import partial

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailpool_server.store.driver import PgDriver

# How long `close` waits for units still running before it ends their connections.
CLOSE_GRACE_S = 5.0


@dataclass(eq=False)
class Slot:
    """A connection kept checked out: SQLAlchemy's handle, and the driver's. Its
    generation says which `close` retires it."""

    conn: AsyncConnection
    driver: PgDriver
    generation: int


class Slots:
    """At most `limit` slots, opened as units need them; a unit that finds every slot
    busy waits for one (first come, first served)."""

    def __init__(self, engine: AsyncEngine, limit: int) -> None:
        # SQLAlchemy statements on a slot run inside the unit's own transaction
        # (BEGIN/COMMIT on the driver): its view of the connection is AUTOCOMMIT.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._limit = limit
        self._generation = 0
        self._idle: list[Slot] = []
        self._open = 0  # this generation's slots, open or opening
        self._busy: set[Slot] = set()  # taken by units, of any generation
        self._opening: set[asyncio.Future[Slot]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._settled: asyncio.Event | None = None  # set as opens and closes finish
        # Each waiter gets a slot, or None: capacity came free, try to open one.
        self._waiters: deque[asyncio.Future[Slot | None]] = deque()

    @property
    def busy(self) -> int:
        return len(self._busy)

    @property
    def opened(self) -> int:
        return self._open

    async def take(self) -> Slot:
        while True:
            if self._idle:
                slot = self._idle.pop()
                self._busy.add(slot)
                return slot
            if self._open < self._limit:
                self._open += 1
                return await self._open_slot()
            waiter: asyncio.Future[Slot | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed_over = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()  # handed over as we gave up: pass it on
                    if handed is not None:
                        self._busy.add(handed)
                        self.give(handed)
                    else:
                        self._wake_one(None)
                else:
                    self._waiters.remove(waiter)
                raise
            if handed_over is not None:
                self._busy.add(handed_over)
                return handed_over

    def give(self, slot: Slot) -> None:
        """Back from a unit that left its connection outside any transaction."""
        self._busy.discard(slot)
        if slot.generation != self._generation:
            self._close_soon(slot)  # its unit outlived a `close`
        elif not self._wake_one(slot):
            self._idle.append(slot)

    async def discard(self, slot: Slot) -> None:
        """Back from a unit whose connection cannot be trusted: SQLAlchemy's pool drops
        it, and the slot's capacity is free for a new connection."""
        self._busy.discard(slot)
        if slot.generation == self._generation:
            self._open -= 1
            self._wake_one(None)
        await asyncio.shield(self._close_soon(slot))

    async def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Check every connection back in to SQLAlchemy's pool, closed (the engine's
        dispose would not touch one that is checked out). Idle ones go now; a unit
        still running gets `grace_s` to finish, and then its connection is
        terminated, which fails its statement and so discards its slot. Later takes
        open new connections."""
        retired = self._generation
        self._generation += 1
        self._open = 0
        idle, self._idle = self._idle, []
        for slot in idle:
            self._close_soon(slot)
        while self._wake_one(None):  # waiters open connections of the new generation
            pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s

        def running() -> list[Slot]:
            return [slot for slot in self._busy if slot.generation <= retired]

        while running() or self._opening or self._closing:
            self._settled = settled = asyncio.Event()
            try:
                await asyncio.wait_for(settled.wait(), deadline - loop.time())
            except TimeoutError:
                break
        for slot in running():
            slot.driver.raw.terminate()

    async def _open_slot(self) -> Slot:
        """A new connection for this taker (its capacity counted already). Opening
        runs in a task of its own: if the taker gives up meanwhile, the connection
        still opens and goes to the next taker."""
        generation = self._generation
        opening = asyncio.ensure_future(self._connect(generation))
        self._opening.add(opening)
        opening.add_done_callback(self._opened)
        try:
            slot = await asyncio.shield(opening)
        except BaseException:
            if not opening.done():
                opening.add_done_callback(partial(self._opened_for_nobody, generation))
            elif opening.cancelled() or opening.exception() is not None:
                self._not_opened(generation)
            raise
        self._busy.add(slot)
        return slot

    def _opened(self, opening: asyncio.Future[Slot]) -> None:
        self._opening.discard(opening)
        self._settle()

    def _opened_for_nobody(self, generation: int, opening: asyncio.Future[Slot]) -> None:
        if opening.cancelled() or opening.exception() is not None:
            # The taker left, so nobody sees this error; the next taker meets its own.
            self._not_opened(generation)
            return
        slot = opening.result()
        self._busy.add(slot)
        self.give(slot)

    def _not_opened(self, generation: int) -> None:
        if generation == self._generation:
            self._open -= 1
            self._wake_one(None)

    def _close_soon(self, slot: Slot) -> asyncio.Task[None]:
        """Invalidate the connection (closed, never pooled again) and check it in, in
        a task of its own so that a cancelled caller cannot leave it half done."""
        task = asyncio.ensure_future(_invalidate(slot.conn))
        self._closing.add(task)
        task.add_done_callback(self._closed)
        return task

    def _closed(self, task: asyncio.Task[None]) -> None:
        self._closing.discard(task)
        self._settle()

    def _settle(self) -> None:
        if self._settled is not None:
            self._settled.set()

    def _wake_one(self, slot: Slot | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return True
        return False

    async def _connect(self, generation: int) -> Slot:
        conn = await self._engine.connect()
        try:
            proxied = await conn.get_raw_connection()
            raw = proxied.driver_connection
            assert isinstance(raw, asyncpg.Connection)
        except BaseException:
            await conn.close()
            raise
        return Slot(conn, PgDriver(raw), generation)


async def _invalidate(conn: AsyncConnection) -> None:
    # The connection is being thrown away: an error closing it changes nothing, and
    # SQLAlchemy has checked it in (closed) by the time invalidate returns or fails.
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()
