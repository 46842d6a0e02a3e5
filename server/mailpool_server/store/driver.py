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
from typing import Any, Protocol

import asyncpg

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")

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

    __slots__ = ("_sqlite_forms", "pg", "pg_names", "sets", "sqlite", "sqlite_names", "text")

    def __init__(self, text: str, *, pg: str | None = None, sets: tuple[str, ...] = ()) -> None:
        self.text = text
        self.sets = sets  # the parameters that are lists (see set_sql)
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

    async def one(self, sql: Sql, params: Mapping[str, Any]) -> Row | None: ...
    async def all(self, sql: Sql, params: Mapping[str, Any]) -> list[Row]: ...
    async def run(self, sql: Sql, params: Mapping[str, Any]) -> None: ...
    async def run_many(self, sql: Sql, rows: list[dict[str, Any]]) -> None: ...


class SqliteDriver:
    """sqlite3 in place: a statement on cached pages costs microseconds, less than a
    hand-off to a thread (see sqlite_db.py)."""

    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    async def one(self, sql: Sql, params: Mapping[str, Any]) -> Row | None:
        row: Row | None = self._execute(sql, params).fetchone()
        return row

    async def all(self, sql: Sql, params: Mapping[str, Any]) -> list[Row]:
        return self._execute(sql, params).fetchall()

    async def run(self, sql: Sql, params: Mapping[str, Any]) -> None:
        self._execute(sql, params)

    async def run_many(self, sql: Sql, rows: list[dict[str, Any]]) -> None:
        assert not sql.sets, "a statement with sets has no one text for every row"
        names = sql.sqlite_names
        self.raw.executemany(sql.sqlite, [[row[name] for name in names] for row in rows])

    def _execute(self, sql: Sql, params: Mapping[str, Any]) -> sqlite3.Cursor:
        if sql.sets:
            return self.raw.execute(*sql.sqlite_form(params))
        return self.raw.execute(sql.sqlite, [params[name] for name in sql.sqlite_names])


class PgDriver:
    """asyncpg: each statement text is prepared once per connection (its statement
    cache) and then costs one round trip."""

    __slots__ = ("raw",)

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

    async def run_many(self, sql: Sql, rows: list[dict[str, Any]]) -> None:
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
