"""A SQLite batch's inserts written together, one executemany per statement.

A send inserts a row each into conversations, messages, timeline, pending_sends and
events. One statement at a time, between the send's Python, each cost 15-50 µs (the
CPU's caches are cold again by the next one); removing all five made a send a fifth
cheaper. Here a unit of work hands them to its batch instead (Driver.insert_batched),
and the batch's rows of each statement are written with one executemany: the same
rows, in the same transaction, for a fraction of the calls.

What keeps this invisible: the rows kept are written before the next statement on the
writer connection that names one of these tables (driver.Sql.names_batched_table; any
statement through SQLAlchemy counts, whatever it names), and at the latest just before
the batch's COMMIT. Whatever runs in the transaction therefore reads them as if each
had been written when it was handed over; other connections see committed data only.
They are written in BATCHED_TABLES order (each table's rows reference only earlier
tables' or rows already stored), and in the order they were handed over within a table.

A unit of work that rolls back drops the rows it handed over, and puts back the earlier
units' rows it wrote itself (its savepoint's rollback undid them). The one thing that
changes: a kept row that cannot be written fails the whole batch (every member gets
the error, as when the COMMIT fails) rather than the unit that handed it over. Their
ids are random, their seqs reserved under the identity's lock, and what they reference
exists (no row is ever deleted), so that takes a failing disk, which fails the COMMIT
anyway.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from mailpool_server.store.driver import Sql

Rows = dict[Sql, list[list[Any]]]


def _extend(rows: Rows, more: Rows) -> None:
    """Append `more`'s rows to `rows`, statement by statement (into lists of its own)."""
    for sql, values in more.items():
        rows.setdefault(sql, []).extend(values)


class BatchedInserts:
    """The rows handed over on the writer connection and not yet written: those of
    the units already done (`_done`) and those of the unit running (`_running`)."""

    __slots__ = ("_done", "_lent", "_running", "raw")

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self._done: Rows = {}
        self._running: Rows = {}
        # Done units' rows the running unit wrote: undone if its savepoint rolls back.
        self._lent: Rows = {}

    @property
    def pending(self) -> bool:
        """Any row kept (checked before every statement on the writer)."""
        return bool(self._done or self._running)

    def add(self, sql: Sql, values: list[list[Any]]) -> None:
        assert sql.batched_rank is not None, "only inserts into BATCHED_TABLES are batched"
        self._running.setdefault(sql, []).extend(values)

    def write(self) -> None:
        """Write every row kept (inside the running unit's savepoint, if one runs)."""
        rows, running = self._done, self._running
        self._done, self._running = {}, {}
        _extend(self._lent, rows)  # copies: `rows` grows by the running unit's next
        _extend(rows, running)
        for sql in sorted(rows, key=_rank):
            self.raw.executemany(sql.sqlite, rows[sql])

    def unit_done(self) -> None:
        _extend(self._done, self._running)
        self._running, self._lent = {}, {}

    def unit_failed(self) -> None:
        """The running unit rolled back: its rows are gone, and so are the done units'
        rows it wrote, which are kept again, ahead of any kept since."""
        lent, self._lent, self._running = self._lent, {}, {}
        _extend(lent, self._done)
        self._done = lent

    def write_before_commit(self) -> None:
        self.write()
        self._lent = {}

    def drop(self) -> None:
        """The batch's transaction is gone: so are the rows kept for it."""
        self._done, self._running, self._lent = {}, {}, {}


def _rank(sql: Sql) -> int:
    assert sql.batched_rank is not None
    return sql.batched_rank
