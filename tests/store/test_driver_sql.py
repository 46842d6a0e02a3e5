"""Sql: one `:name` text, the numbered forms each driver binds by position."""

from __future__ import annotations

import sqlite3

import pytest

from mailpool_server.store.driver import SET_MEMBERS_INLINE, Sql, SqliteDriver, set_sql


def test_each_name_gets_one_number_in_order_of_first_use() -> None:
    sql = Sql("SELECT :b, :a, :b WHERE x = :a_2")
    assert sql.sqlite == "SELECT ?1, ?2, ?1 WHERE x = ?3"
    assert sql.pg == "SELECT $1, $2, $1 WHERE x = $3"
    assert sql.sqlite_names == sql.pg_names == ("b", "a", "a_2")
    assert sql.pg_args({"a": 1, "b": 2, "a_2": 3, "unused": 4}) == [2, 1, 3]


def test_casts_and_the_backends_own_texts_are_numbered_apart() -> None:
    sql = Sql("SELECT :x", pg="SELECT :y::text[], :x::bigint")
    assert sql.sqlite == "SELECT ?1" and sql.sqlite_names == ("x",)
    assert sql.pg == "SELECT $1::text[], $2::bigint" and sql.pg_names == ("y", "x")
    assert sql.text == "SELECT :x"


@pytest.fixture
def driver() -> SqliteDriver:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    return SqliteDriver(raw)


async def test_sqlite_binds_repeated_names_and_sets(driver: SqliteDriver) -> None:
    await driver.insert_batched(
        Sql("INSERT INTO t (k, v) VALUES (:k, :v)"),
        [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "c", "v": 3}],
    )
    among = set_sql("SELECT k FROM t WHERE {keys} AND v >= :v ORDER BY k", keys="k")
    assert await driver.all(among, {"keys": ["c", "a", "zz"], "v": 1}) == [("a",), ("c",)]
    assert await driver.all(among, {"keys": [], "v": 0}) == []
    twice = Sql("SELECT count(*) FROM t WHERE v = :v OR v = :v + 1")
    assert await driver.one(twice, {"v": 2}) == (2,)


async def test_sqlite_sets_past_the_inline_limit_go_as_one_array(driver: SqliteDriver) -> None:
    keys = [f"k{n:03d}" for n in range(SET_MEMBERS_INLINE + 40)]
    await driver.insert_batched(
        Sql("INSERT INTO t (k, v) VALUES (:k, :v)"), [{"k": k, "v": 0} for k in keys]
    )
    among = set_sql("SELECT count(*) FROM t WHERE {keys}", keys="k")
    for size in (1, SET_MEMBERS_INLINE, SET_MEMBERS_INLINE + 1, len(keys)):
        assert await driver.one(among, {"keys": [*keys[:size], "absent"]}) == (size,)
    text, args = among.sqlite_form({"keys": keys})
    assert "json_each" in text and len(args) == 1
    text, args = among.sqlite_form({"keys": keys[:2]})
    assert text == "SELECT count(*) FROM t WHERE k IN (?1, ?2)" and args == keys[:2]
