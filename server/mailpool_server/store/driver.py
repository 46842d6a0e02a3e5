"""The hot path's statements, run on the database driver itself.

SQLAlchemy costs 25-45 µs of Python per statement, the bare driver 4-11 µs, and a send
runs about fifteen: the statements every send, replay, key check and event read runs
are written here as SQL and executed by `sqlite3` or `asyncpg` directly (asyncpg keeps
each one prepared on its connection). SQLAlchemy keeps the schema, the migrations and
every cold path, on the same connection and transaction (see unit.py).

A statement is written once with `:name` parameters; `Sql` derives PostgreSQL's `$n`
form. Where the backends' SQL differs, `Sql` takes each backend's text.
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


class Sql:
    """One statement: SQLite's text (named parameters), PostgreSQL's text (positional
    `$n`, in `names` order)."""

    __slots__ = ("has_sets", "names", "pg", "sqlite")

    def __init__(self, text: str, *, pg: str | None = None, has_sets: bool = False) -> None:
        self.sqlite = text
        self.has_sets = has_sets  # a parameter is a list (see set_sql)
        names: list[str] = []

        def position(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.pg = _NAMED.sub(position, pg if pg is not None else text)
        self.names = tuple(names)

    def pg_args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


class Driver(Protocol):
    """Statements on the unit of work's own connection, inside its transaction (or,
    for a lookup, each on its own)."""

    async def one(self, sql: Sql, params: Mapping[str, Any]) -> Row | None: ...
    async def all(self, sql: Sql, params: Mapping[str, Any]) -> list[Row]: ...
    async def run(self, sql: Sql, params: Mapping[str, Any]) -> None: ...
    async def run_many(self, sql: Sql, rows: list[dict[str, Any]]) -> None: ...


def _sqlite_params(sql: Sql, params: Mapping[str, Any]) -> Mapping[str, Any]:
    # A list is a set to match against: SQLite reads it as JSON, with json_each.
    if sql.has_sets:
        return {k: json.dumps(v) if type(v) is list else v for k, v in params.items()}
    return params


class SqliteDriver:
    """sqlite3 in place: a statement on cached pages costs microseconds, less than a
    hand-off to a thread (see sqlite_db.py)."""

    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    async def one(self, sql: Sql, params: Mapping[str, Any]) -> Row | None:
        row: Row | None = self.raw.execute(sql.sqlite, _sqlite_params(sql, params)).fetchone()
        return row

    async def all(self, sql: Sql, params: Mapping[str, Any]) -> list[Row]:
        return self.raw.execute(sql.sqlite, _sqlite_params(sql, params)).fetchall()

    async def run(self, sql: Sql, params: Mapping[str, Any]) -> None:
        self.raw.execute(sql.sqlite, _sqlite_params(sql, params))

    async def run_many(self, sql: Sql, rows: list[dict[str, Any]]) -> None:
        self.raw.executemany(sql.sqlite, rows)


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
    template stands for "column is one of :name" (a Python list). SQLite reads the
    list as a JSON array; PostgreSQL takes it as an array, so the statement text (and
    its prepared plan) is the same whatever the list's length."""
    sqlite = template.format(
        **{
            name: f"{column} IN (SELECT value FROM json_each(:{name}))"
            for name, column in sets.items()
        }
    )
    pg = template.format(**{name: f"{column} = ANY(:{name})" for name, column in sets.items()})
    return Sql(sqlite, pg=pg, has_sets=True)


def quoted(columns: tuple[str, ...]) -> str:
    """A column list, each name quoted ("references" is a keyword)."""
    return ", ".join(f'"{column}"' for column in columns)


def placeholders(columns: tuple[str, ...], prefix: str = "") -> str:
    """`:name` parameters for the columns, in order (with a prefix, where one
    statement writes several tables' rows)."""
    return ", ".join(f":{prefix}{column}" for column in columns)
