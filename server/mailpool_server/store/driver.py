"""The hot path's statements, run on the database driver itself.

SQLAlchemy costs 25-45 µs of Python per statement, the bare driver 4-11 µs, and a send
runs about fifteen: the statements every send, replay, key check and event read runs
are written here as SQL and executed by `sqlite3` or `asyncpg` directly (asyncpg keeps
each one prepared on its connection). SQLAlchemy keeps the schema, the migrations and
every cold path, on the same connection and transaction (see unit.py).

A statement is written once with `:name` parameters; `Sql` derives the numbered forms
the drivers bind by position. Where the backends' SQL differs, `Sql` takes each
backend's text.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg

if TYPE_CHECKING:
    from mailpool_server.store.sqlite_batched import BatchedInserts
    from mailpool_server.store.sqlite_mailboxes import MailboxBook

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
# The tables whose inserts SQLite writes a batch at a time (sqlite_batched.py), in the
# order their rows are written: each table's rows reference only earlier tables'.
BATCHED_TABLES = ("conversations", "messages", "timeline", "pending_sends", "events")
_BATCHED_TABLE = re.compile(r"\b(?:" + "|".join(BATCHED_TABLES) + r")\b")
_INSERT_INTO = re.compile(r"\s*INSERT INTO (\w+)")
# What SQLite's writer keeps of the mailboxes for shortlists (sqlite_mailboxes.py).
MAILBOX_TABLES = re.compile(r"\b(?:mailboxes|mailbox_usage)\b")

Row = Sequence[Any]
# A statement's set parameters are bound member by member on SQLite up to this many
# members in all, and as one JSON array past it (see Sql.sqlite_form).
SET_MEMBERS_INLINE = 64


class Sql:
    """One statement, written once with `:name` parameters (`text`), in the numbered
    form each driver binds: SQLite's `?n`, PostgreSQL's `$n`, each with its names in
    the order of their numbers. (sqlite3 binds a list by position; binding a dict by
    name, a name lookup and a dict probe per parameter, took a fifth of the send
    path's statement time.)"""

    __slots__ = (
        "_sqlite_forms",
        "batched_rank",
        "forgets_mailboxes",
        "names_batched_table",
        "pg",
        "pg_names",
        "sets",
        "sqlite",
        "sqlite_names",
        "text",
    )

    def __init__(
        self,
        text: str,
        *,
        pg: str | None = None,
        sets: tuple[str, ...] = (),
        keeps_mailboxes: bool = False,
    ) -> None:
        self.text = text
        self.sets = sets  # the parameters that are lists (see set_sql)
        # Whether SQLite's writer forgets the mailboxes it keeps when this runs: it
        # names them, and its caller does not keep the book itself (`keeps_mailboxes`).
        self.forgets_mailboxes = not keeps_mailboxes and MAILBOX_TABLES.search(text) is not None
        # Whether it may read or write rows SQLite keeps for its batch (written first).
        self.names_batched_table = _BATCHED_TABLE.search(text) is not None
        # For an insert into one of BATCHED_TABLES, that table's place in it.
        target = _INSERT_INTO.match(text)
        self.batched_rank = (
            BATCHED_TABLES.index(target[1])
            if target is not None and target[1] in BATCHED_TABLES
            else None
        )
        self.sqlite, self.sqlite_names = _numbered(text, "?")
        self.pg, self.pg_names = _numbered(pg if pg is not None else text, "$")
        # Per tuple of set sizes (None: the JSON form), the text and its names.
        self._sqlite_forms: dict[tuple[int, ...] | None, tuple[str, tuple[str, ...]]] = {}

    def sqlite_form(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """SQLite's text and arguments for these parameters. Each set `:name` becomes
        one parameter per member (`:name` of two members: `?3, ?4`), the text made
        once per tuple of set sizes: a JSON array read with json_each cost a JSON
        parse and a temporary table per statement, and a one-member `IN (?)` is
        `= ?`. Past SET_MEMBERS_INLINE members in all, the set goes as a JSON array
        (SQLite caps a statement's parameters, and each size is a text to keep)."""
        sizes = tuple(len(params[name]) for name in self.sets)
        inline = sum(sizes) <= SET_MEMBERS_INLINE
        key = sizes if inline else None
        form = self._sqlite_forms.get(key)
        if form is None:
            text = self.text
            for name, size in zip(self.sets, sizes, strict=True):
                if inline:
                    members = ", ".join(f":{name}__{i}" for i in range(size))
                    text = text.replace(f"(:{name})", f"({members})")
                else:
                    text = text.replace(f"(:{name})", f"(SELECT value FROM json_each(:{name}))")
            form = self._sqlite_forms[key] = _numbered(text, "?")
        text, names = form
        flat = dict(params)
        for name in self.sets:
            if inline:
                flat.update((f"{name}__{i}", member) for i, member in enumerate(params[name]))
            else:
                flat[name] = json.dumps(params[name])
        return text, [flat[name] for name in names]

    def pg_args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.pg_names]


def _numbered(text: str, mark: str) -> tuple[str, tuple[str, ...]]:
    """`text` with each `:name` replaced by `{mark}n` (the same n for the same name),
    and the names in the order of their numbers."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"{mark}{names.index(name) + 1}"

    return _NAMED.sub(number, text), tuple(names)


class Driver(Protocol):
    """Statements on the unit of work's own connection, inside its transaction (or,
    for a lookup, each on its own)."""

    @property
    def mailboxes(self) -> MailboxBook | None:
        """SQLite's writer: what it keeps of the mailboxes for shortlists (else None)."""
        ...

    async def one(self, sql: Sql, params: Mapping[str, Any]) -> Row | None: ...
    async def all(self, sql: Sql, params: Mapping[str, Any]) -> list[Row]: ...
    async def run(self, sql: Sql, params: Mapping[str, Any]) -> None: ...
    async def insert_batched(self, sql: Sql, rows: list[dict[str, Any]]) -> None:
        """Insert rows into one of BATCHED_TABLES: SQLite's writer may keep them to
        write with its batch's other rows of the statement (sqlite_batched.py); every
        statement that could see them runs after they are written."""
        ...


class SqliteDriver:
    """sqlite3 in place: a statement on cached pages costs microseconds, less than a
    hand-off to a thread (see sqlite_db.py). On the writer connection, `batched`
    keeps the batch's inserts (see sqlite_batched.py) and `mailboxes` what shortlists
    are made of (sqlite_mailboxes.py)."""

    __slots__ = ("batched", "mailboxes", "raw")

    def __init__(
        self,
        raw: sqlite3.Connection,
        batched: BatchedInserts | None = None,
        mailboxes: MailboxBook | None = None,
    ) -> None:
        self.raw = raw
        self.batched = batched
        self.mailboxes = mailboxes

    async def one(self, sql: Sql, params: Mapping[str, Any]) -> Row | None:
        row: Row | None = self._execute(sql, params).fetchone()
        return row

    async def all(self, sql: Sql, params: Mapping[str, Any]) -> list[Row]:
        return self._execute(sql, params).fetchall()

    async def run(self, sql: Sql, params: Mapping[str, Any]) -> None:
        self._execute(sql, params)

    async def insert_batched(self, sql: Sql, rows: list[dict[str, Any]]) -> None:
        assert not sql.sets, "a statement with sets has no one text for every row"
        names = sql.sqlite_names
        values = [[row[name] for name in names] for row in rows]
        if self.batched is None:
            self.raw.executemany(sql.sqlite, values)
        else:
            self.batched.add(sql, values)

    def _execute(self, sql: Sql, params: Mapping[str, Any]) -> sqlite3.Cursor:
        batched = self.batched
        if batched is not None and batched.pending and sql.names_batched_table:
            batched.write()
        if sql.forgets_mailboxes and self.mailboxes is not None:
            self.mailboxes.forget()
        if sql.sets:
            return self.raw.execute(*sql.sqlite_form(params))
        return self.raw.execute(sql.sqlite, [params[name] for name in sql.sqlite_names])


class PgDriver:
    """asyncpg: each statement text is prepared once per connection (its statement
    cache) and then costs one round trip."""

    __slots__ = ("raw",)
    # Replicas write the same rows: no process can keep them (sqlite_mailboxes.py).
    mailboxes: MailboxBook | None = None

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw

    async def one(self, sql: Sql, params: Mapping[str, Any]) -> Row | None:
        row: Row | None = await self.raw.fetchrow(sql.pg, *sql.pg_args(params))
        return row

    async def all(self, sql: Sql, params: Mapping[str, Any]) -> list[Row]:
        rows: list[Row] = await self.raw.fetch(sql.pg, *sql.pg_args(params))
        return rows

    async def run(self, sql: Sql, params: Mapping[str, Any]) -> None:
        await self.raw.execute(sql.pg, *sql.pg_args(params))

    async def insert_batched(self, sql: Sql, rows: list[dict[str, Any]]) -> None:
        # Written now: a PostgreSQL send writes its rows in one statement (outbound.py).
        await self.raw.executemany(sql.pg, [sql.pg_args(row) for row in rows])


def set_sql(template: str, **sets: str) -> Sql:
    """A statement that matches columns against set parameters: `{name}` in the
    template stands for "column is one of :name" (a Python list). SQLite gets one
    parameter per member (see Sql.sqlite_form); PostgreSQL takes the list as an array,
    so its statement text (and prepared plan) is the same whatever the list's length."""
    sqlite = template.format(**{name: f"{column} IN (:{name})" for name, column in sets.items()})
    pg = template.format(**{name: f"{column} = ANY(:{name})" for name, column in sets.items()})
    return Sql(sqlite, pg=pg, sets=tuple(sets))


def quoted(columns: tuple[str, ...]) -> str:
    """A column list, each name quoted ("references" is a keyword)."""
    return ", ".join(f'"{column}"' for column in columns)


def placeholders(columns: tuple[str, ...], prefix: str = "") -> str:
    """`:name` parameters for the columns, in order (with a prefix, where one
    statement writes several tables' rows)."""
    return ", ".join(f":{prefix}{column}" for column in columns)
