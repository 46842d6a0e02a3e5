"""SQLite units of work: statements run in place, writes are group-committed.

SQLite admits one writer at a time, and with synchronous=FULL every commit waits for
the disk. Taking a lock, a transaction and an fsync per unit of work capped sends at
tens per second. Here every writer in this process shares one connection and takes
turns on it; each unit of work runs inside a SAVEPOINT of a transaction that stays
open while more writers are queued, and one COMMIT (run on a worker thread, so the
event loop keeps serving) makes the whole batch durable. A unit that raises rolls
back to its savepoint and touches no one else; a unit's caller returns only once
its batch has committed, so nothing is acknowledged before it is on disk. If the
COMMIT itself fails, every member of the batch gets that error and nothing of the
batch is stored.

Statements run in the event loop's thread: SQLite is a library, a statement on
cached pages costs microseconds, and handing each one to a thread cost far more.
Readers use their own pooled connections, so they see only committed data. A batch's
inserts into the tables every send writes are written together (sqlite_batched.py),
and the writer keeps what send shortlists are made of (sqlite_mailboxes.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from mailpool_server.service.ports import WriteLockTimeout
from mailpool_server.store.base import InlineSession, SessionPort, Unit, no_session
from mailpool_server.store.driver import MAILBOX_TABLES, SqliteDriver
from mailpool_server.store.migrate import upgrade_on
from mailpool_server.store.sqlite_batched import BatchedInserts
from mailpool_server.store.sqlite_mailboxes import MailboxBook

# Past this many units the batch commits even with writers queued, bounding how long
# the first member of a batch waits for its acknowledgement.
MAX_BATCH = 128
# Another process (the CLI, a dispatcher) holding the write lock: how long a writer
# keeps retrying before the error reaches its caller, and the first retry delay.
BUSY_TIMEOUT_S = 10.0
_FIRST_BUSY_DELAY_S = 0.001


def sync_url(url: str) -> str:
    """The pysqlite URL of the file (`sqlite+aiosqlite://` URLs of older settings name
    the same file)."""
    return make_url(url).set(drivername="sqlite").render_as_string(hide_password=False)


def _sqlite_engine(url: str, pool_size: int) -> Engine:
    engine = create_engine(
        sync_url(url),
        poolclass=QueuePool,
        pool_size=pool_size,
        # Never block the event loop waiting for a pooled connection: open another.
        max_overflow=-1,
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver: we issue BEGIN ourselves.
        dbapi_connection.isolation_level = None
        _configure(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A connection used through SQLAlchemy alone (migrations, tests): a deferred
        # transaction. Units of work begin theirs on the driver (readers: BEGIN,
        # the writer: BEGIN IMMEDIATE in _begin_batch).
        if not conn.get_execution_options().get("mailpool_writer", False) and not (
            _raw(conn).in_transaction
        ):
            conn.exec_driver_sql("BEGIN")

    return engine


def _configure(raw: sqlite3.Connection) -> None:
    raw.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute("PRAGMA temp_store=MEMORY")


def _raw(conn: Connection) -> sqlite3.Connection:
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def _savepoint_session(writer: Connection) -> SessionPort:
    # Its own SAVEPOINT inside the unit's: a failed flush rolls back that far, never
    # the batch's transaction.
    session = Session(writer, join_transaction_mode="create_savepoint", expire_on_commit=False)
    session.begin()
    return InlineSession(session)


def _plain_session(conn: Connection) -> SessionPort:
    return InlineSession(Session(conn, expire_on_commit=False))


async def _close_session(session: SessionPort, ok: bool) -> None:
    assert isinstance(session, InlineSession)
    inner = session.inner
    try:
        if ok and inner.in_transaction():
            inner.commit()
        elif inner.in_transaction():
            inner.rollback()
    finally:
        inner.close()


@dataclass
class GroupCommitStats:
    """Counts since start: units of work committed and the COMMITs that did it."""

    units: int = 0
    batches: int = 0


class _Batch:
    """One open write transaction and the writers whose units of work are in it."""

    __slots__ = ("committed", "members")

    def __init__(self) -> None:
        self.members = 0
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class SqliteDatabase:
    """Units of work on a SQLite file; see the module comment."""

    dialect = "sqlite"

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self._engine = _sqlite_engine(url, pool_size)
        self._path = make_url(sync_url(url)).database or ""
        self._pool_size = pool_size
        self._lookups: list[sqlite3.Connection] = []
        self._writer: Connection | None = None
        self._batched: BatchedInserts | None = None  # the writer's, made with it
        self._mailboxes = MailboxBook()  # the writer's
        self._batch: _Batch | None = None
        # Turn-taking on the writer connection: _busy while a unit of work or a
        # commit holds it; the queue holds the writers waiting for it, oldest first.
        self._busy = False
        self._queue: deque[asyncio.Future[None]] = deque()
        self._commits: set[asyncio.Task[None]] = set()
        self.stats = GroupCommitStats()
        # Metrics hooks (metrics.py sets them when metrics are on): units per COMMIT,
        # and seconds a writer waited for its turn.
        self.on_commit: Callable[[int], None] | None = None
        self.on_lock_wait: Callable[[float], None] | None = None

    def migrate(self) -> None:
        """Bring the schema up to date (at start-up, before any unit of work). The
        connection also switches the file to WAL, a persistent setting."""
        with self._engine.begin() as conn:
            upgrade_on(conn)

    def unit(
        self, *, write: bool, lock_timeout_s: float | None = None
    ) -> AbstractAsyncContextManager[Unit]:
        if not write:
            return self._read_unit()
        return _WriteUnit(self, lock_timeout_s)

    @asynccontextmanager
    async def _read_unit(self) -> AsyncIterator[Unit]:
        """A deferred transaction on a pooled reader: one snapshot across statements,
        of committed data only."""
        with self._engine.connect() as conn:
            raw = _raw(conn)
            raw.execute("BEGIN")
            unit = Unit(SqliteDriver(raw), partial(_plain_session, conn), _close_session)
            try:
                yield unit
            finally:
                await unit.close(ok=False)
                raw.rollback()  # ends the snapshot (no-op if the session's close did)

    def lookup(self) -> AbstractAsyncContextManager[Unit]:
        """Statements each on their own, no transaction: for what one SELECT answers
        (the key check, an idempotent replay, an event page). Raw connections of their
        own, kept for reuse; no pool or session machinery."""
        return _Lookup(self)

    def _lend_lookup(self) -> sqlite3.Connection:
        return self._lookups.pop() if self._lookups else self._open_raw()

    def _take_back_lookup(self, raw: sqlite3.Connection) -> None:
        if raw.in_transaction:  # a statement left mid-way: reset before reuse
            raw.rollback()
        if len(self._lookups) < self._pool_size:
            self._lookups.append(raw)
        else:
            raw.close()

    def _open_raw(self) -> sqlite3.Connection:
        raw = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        _configure(raw)
        return raw

    async def _take_turn(self, timeout_s: float | None) -> None:
        if not self._busy and not self._queue:
            self._busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            async with asyncio.timeout(timeout_s):
                await turn
        except BaseException as error:
            if turn.done() and not turn.cancelled():
                self._release_turn()  # handed the turn as we gave up: pass it on
            else:
                with suppress(ValueError):
                    self._queue.remove(turn)
            if isinstance(error, TimeoutError):
                raise WriteLockTimeout() from None
            raise

    def _release_turn(self) -> None:
        """Called by whoever holds the turn when done with the connection: hand it
        to the next writer (who joins the open batch), or commit the batch."""
        while self._queue and self._queue[0].done():
            self._queue.popleft()  # gave up waiting
        batch = self._batch
        if batch is not None and (not self._queue or batch.members >= MAX_BATCH):
            self._batch = None
            task = asyncio.get_running_loop().create_task(self._commit(batch))
            self._commits.add(task)
            task.add_done_callback(self._commits.discard)
            return
        if self._queue:
            self._queue.popleft().set_result(None)
        else:
            self._busy = False

    async def _begin_batch(self, deadline: float | None) -> _Batch:
        """The open batch, or a new one: BEGIN IMMEDIATE, retried (without blocking
        the loop) while another process holds SQLite's write lock. Past `deadline`
        that wait is WriteLockTimeout; without one, BUSY_TIMEOUT_S bounds it."""
        if self._batch is not None:
            return self._batch
        writer = self._writer_connection()
        raw = writer.connection.dbapi_connection
        assert raw is not None
        loop = asyncio.get_running_loop()
        give_up = loop.time() + BUSY_TIMEOUT_S if deadline is None else deadline
        delay = _FIRST_BUSY_DELAY_S
        writer.begin()
        try:
            while True:
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as error:
                    if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or loop.time() >= give_up:
                        if deadline is not None and error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                            raise WriteLockTimeout() from error
                        raise
                await asyncio.sleep(min(delay, max(0.0, give_up - loop.time())))
                delay = min(delay * 2, 0.05)
            # Under the write lock now: another connection's commits are all in.
            self._mailboxes.check_others(_raw(writer))
        except BaseException:
            writer.rollback()
            raise
        self._batch = _Batch()
        return self._batch

    def _writer_connection(self) -> Connection:
        if self._writer is None:
            writer = self._engine.connect().execution_options(mailpool_writer=True)
            # This connection never waits inside SQLite for another process's write
            # lock (that would stop the event loop): _begin_batch waits instead.
            writer.exec_driver_sql("PRAGMA busy_timeout=0")
            writer.commit()
            batched = BatchedInserts(_raw(writer))

            mailboxes = self._mailboxes

            # A statement through SQLAlchemy may read any table: the rows kept go first
            # (not before a session's ROLLBACK TO, which would only undo them again).
            # One that names the mailboxes may change them: the book forgets them.
            @event.listens_for(writer, "before_cursor_execute")
            def _write_batched_first(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                if batched.pending and not statement.startswith("ROLLBACK"):
                    batched.write()
                if MAILBOX_TABLES.search(statement):
                    mailboxes.forget()

            self._writer, self._batched = writer, batched
        return self._writer

    async def _commit(self, batch: _Batch) -> None:
        writer, batched = self._writer, self._batched
        assert writer is not None and batched is not None
        try:
            await asyncio.to_thread(_write_and_commit, batched, writer)
        except BaseException as error:
            batched.drop()
            self._mailboxes.forget()
            with suppress(Exception):
                writer.rollback()
            # SQLAlchemy may have given the transaction up already; SQLite keeps it
            # open after a failed COMMIT until told otherwise.
            raw = writer.connection.dbapi_connection
            if raw is not None:
                with suppress(Exception):
                    raw.rollback()
            batch.committed.set_exception(error)
            # Retrieved by the members; mark it seen for batches whose only member
            # raised before waiting.
            batch.committed.exception()
        else:
            batch.committed.set_result(None)
            self.stats.batches += 1
            self.stats.units += batch.members
            if self.on_commit is not None:
                self.on_commit(batch.members)
        finally:
            self._release_turn()

    async def dispose(self) -> None:
        """Wait for batches in flight, then close every connection."""
        while self._commits:
            await asyncio.gather(*self._commits, return_exceptions=True)
        if self._writer is not None and not self._busy:
            self._writer.close()
            self._writer = None
        while self._lookups:
            self._lookups.pop().close()
        self._engine.dispose()


def _write_and_commit(batched: BatchedInserts, writer: Connection) -> None:
    """The batch's kept rows, then its COMMIT, on a thread: the writer is the batch's
    until its commit ends, and sqlite3 lets go of the GIL while it steps, so the event
    loop goes on serving calls meanwhile (the rows were ~9% of its time, py-spy)."""
    batched.write_before_commit()
    writer.commit()


# The hot path's units are classes rather than @asynccontextmanager generators: a send
# opens three (key check, idempotent fast path, the write), and a generator-based one
# costs ~3 µs more each (the generator, its loop hooks and a weak reference).


class _Lookup:
    """SqliteDatabase.lookup's block: a pooled raw connection, lent for its statements."""

    __slots__ = ("_database", "_raw")

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        self._raw: sqlite3.Connection | None = None

    async def __aenter__(self) -> Unit:
        self._raw = raw = self._database._lend_lookup()
        return Unit(SqliteDriver(raw), no_session, _close_session)

    async def __aexit__(self, *_exc: object) -> None:
        raw, self._raw = self._raw, None
        assert raw is not None
        self._database._take_back_lookup(raw)


class _WriteUnit:
    """SqliteDatabase.unit(write=True)'s block: the writer's turn, the unit's SAVEPOINT
    inside the open batch, and on a clean exit the wait for the batch's COMMIT."""

    __slots__ = ("_batch", "_database", "_lock_timeout_s", "_unit")

    def __init__(self, database: SqliteDatabase, lock_timeout_s: float | None) -> None:
        self._database = database
        self._lock_timeout_s = lock_timeout_s
        self._batch: _Batch | None = None
        self._unit: Unit | None = None

    async def __aenter__(self) -> Unit:
        database, lock_timeout_s = self._database, self._lock_timeout_s
        loop = asyncio.get_running_loop()
        deadline = None if lock_timeout_s is None else loop.time() + lock_timeout_s
        if database.on_lock_wait is None:
            await database._take_turn(lock_timeout_s)
        else:
            started = time.perf_counter()
            await database._take_turn(lock_timeout_s)
            database.on_lock_wait(time.perf_counter() - started)
        try:
            self._batch = await database._begin_batch(deadline)
            writer, batched = database._writer, database._batched
            assert writer is not None and batched is not None
            # This unit's work, undone alone if it raises; the batch's COMMIT makes it durable.
            _raw(writer).execute("SAVEPOINT unit")
        except BaseException:
            database._release_turn()
            raise
        driver = SqliteDriver(_raw(writer), batched, database._mailboxes)
        self._unit = Unit(driver, partial(_savepoint_session, writer), _close_session)
        return self._unit

    async def __aexit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        database, batch, unit = self._database, self._batch, self._unit
        assert batch is not None and unit is not None
        writer, batched = database._writer, database._batched
        assert writer is not None and batched is not None
        raw = _raw(writer)
        try:
            if exc_type is not None:
                await _undo(unit, raw, batched, database._mailboxes)
                return
            try:
                await unit.close(ok=True)
                raw.execute("RELEASE unit")
            except BaseException:
                await _undo(unit, raw, batched, database._mailboxes)
                raise
            batched.unit_done()
            batch.members += 1
        finally:
            database._release_turn()
        await asyncio.shield(batch.committed)


async def _undo(
    unit: Unit, raw: sqlite3.Connection, batched: BatchedInserts, mailboxes: MailboxBook
) -> None:
    """A unit that raised: its session's work dropped, its savepoint rolled back, and
    the mailbox book forgotten (it may hold counts the rollback undid)."""
    mailboxes.forget()
    await unit.close(ok=False)
    raw.execute("ROLLBACK TO unit")
    raw.execute("RELEASE unit")
    batched.unit_failed()
