"""SQLite's mailbox book: the writer makes send shortlists from the mailboxes it keeps
(sqlite_mailboxes.py), and each shortlist is the one the SQL query gives (a read unit
asks the database) after whatever changed them: the sends' own counts and cold slots,
a unit that rolled back, a health or warmup change, another connection's commit, a
new day."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mailpool_server.service.picker import Candidate
from mailpool_server.service.ports import SendContext, Tx
from mailpool_server.store.driver import Sql
from mailpool_server.store.sql_store import SqlStore
from mailpool_server.store.sqlite_db import SqliteDatabase
from tests.store.batches import one_batch
from tests.store.contract.seed import DAY, World, conversation, seed_world

NEXT_DAY = "2026-04-28"


class UnitFailed(Exception):
    pass


@pytest.fixture
async def world(store: SqlStore) -> World:
    return await seed_world(store)


def shortlist(candidates: list[Candidate]) -> dict[str, tuple[int, int, int]]:
    return {c.mailbox_id: (c.remaining, c.daily_cap, c.cold_next_at) for c in candidates}


async def context(tx: Tx, world: World, day: str = DAY) -> SendContext:
    return await tx.send_context(world.org.id, world.identity.id, day, [], want=9)


async def written(store: SqlStore, world: World, day: str = DAY) -> dict[str, tuple[int, int, int]]:
    """The shortlist a write unit makes (from the book), checked against the database's."""
    async with store.write() as tx:
        kept = shortlist((await context(tx, world, day)).candidates)
    async with store.read() as tx:
        assert kept == shortlist((await context(tx, world, day)).candidates)
    return kept


async def test_a_send_s_counts_and_cold_slots_are_in_the_next_shortlist(
    store: SqlStore, world: World
) -> None:
    a1, a2 = world.a1.id, world.a2.id
    assert await written(store, world) == {a1: (50, 50, 0), a2: (50, 50, 0)}
    async with store.write() as tx:
        await context(tx, world)  # kept now
        assert await tx.add_mailbox_usage(a1, DAY, 10, 50)
        assert await tx.add_mailbox_usage(a2, DAY, 50, 50)  # no cap left: no candidate
        await tx.set_mailbox_cold_next(a1, 123)
        assert shortlist((await context(tx, world)).candidates) == {a1: (40, 50, 123)}
    assert await written(store, world) == {a1: (40, 50, 123)}


async def test_a_unit_that_rolls_back_takes_its_counts_with_it(
    store: SqlStore, world: World
) -> None:
    a1, a2 = world.a1.id, world.a2.id
    assert await written(store, world) == {a1: (50, 50, 0), a2: (50, 50, 0)}

    async def counted_then_failed() -> None:
        async with store.write() as tx:
            assert await tx.add_mailbox_usage(a1, DAY, 30, 50)
            await tx.set_mailbox_cold_next(a2, 456)
            raise UnitFailed

    with pytest.raises(UnitFailed):
        await counted_then_failed()
    assert await written(store, world) == {a1: (50, 50, 0), a2: (50, 50, 0)}


async def test_a_batch_whose_commit_fails_takes_its_counts_with_it(
    store: SqlStore, database: SqliteDatabase, world: World
) -> None:
    a1, a2 = world.a1.id, world.a2.id
    assert await written(store, world) == {a1: (50, 50, 0), a2: (50, 50, 0)}
    thread = conversation(world.identity.id, a1, "lead1@example.com", 1)

    async def counts(tx: Tx) -> None:
        await context(tx, world)
        assert await tx.add_mailbox_usage(a1, DAY, 30, 50)
        await tx.add_conversation(thread)

    async def same_conversation_again(tx: Tx) -> None:
        await tx.add_conversation(thread)  # kept for the batch: the COMMIT fails

    outcomes = await one_batch(store, database, counts, same_conversation_again)
    assert all(isinstance(outcome, sqlite3.IntegrityError) for outcome in outcomes)
    assert await written(store, world) == {a1: (50, 50, 0), a2: (50, 50, 0)}


async def test_health_and_warmup_changes_are_seen_at_once(store: SqlStore, world: World) -> None:
    a1, a2 = world.a1.id, world.a2.id
    async with store.write() as tx:
        await context(tx, world)
        await tx.record_health_hit(a2, 10, DAY)  # below the threshold: excluded
        await tx.set_warmup(a1, 0, 0, 100, DAY)  # stage 0: a cap of 5
        assert shortlist((await context(tx, world)).candidates) == {a1: (5, 5, 0)}
    assert await written(store, world) == {a1: (5, 5, 0)}


async def test_another_connection_s_commit_is_seen_by_the_next_batch(
    store: SqlStore, world: World, db_path: Path
) -> None:
    a1, a2 = world.a1.id, world.a2.id
    assert await written(store, world) == {a1: (50, 50, 0), a2: (50, 50, 0)}
    # The CLI, or another process: its own connection, committed.
    other = sqlite3.connect(db_path)
    with other:
        other.execute("UPDATE mailboxes SET health = 0 WHERE id = ?", (a2,))
        other.execute(
            "INSERT INTO mailbox_usage (mailbox_id, day, sent, delivered, hits)"
            " VALUES (?, ?, 20, 0, 0)",
            (a1, DAY),
        )
    other.close()
    assert await written(store, world) == {a1: (30, 50, 0)}


async def test_a_new_day_starts_from_the_new_day_s_counts(store: SqlStore, world: World) -> None:
    a1, a2 = world.a1.id, world.a2.id
    async with store.write() as tx:
        await context(tx, world)
        assert await tx.add_mailbox_usage(a1, DAY, 45, 50)
    assert await written(store, world) == {a1: (5, 50, 0), a2: (50, 50, 0)}
    assert await written(store, world, NEXT_DAY) == {a1: (50, 50, 0), a2: (50, 50, 0)}
    async with store.write() as tx:
        # Counted on the day before while the new day is kept: read again when asked.
        assert await tx.add_mailbox_usage(a2, DAY, 10, 50)
    assert await written(store, world, NEXT_DAY) == {a1: (50, 50, 0), a2: (50, 50, 0)}
    assert await written(store, world) == {a1: (5, 50, 0), a2: (40, 50, 0)}


async def test_pins_come_first_then_the_best_the_oldest_on_ties(
    store: SqlStore, world: World
) -> None:
    a1, a2 = world.a1.id, world.a2.id
    async with store.write() as tx:
        tie = await tx.send_context(world.org.id, world.identity.id, DAY, [], want=1)
        assert await tx.add_mailbox_usage(a1, DAY, 40, 50)  # a2 scores higher
        best = await tx.send_context(world.org.id, world.identity.id, DAY, [], want=1)
        pinned = await tx.send_context(
            world.org.id, world.identity.id, DAY, [], want=0, pinned=(a1,)
        )
    assert [c.mailbox_id for c in tie.candidates] == [a1]  # as good as a2, older
    assert [c.mailbox_id for c in best.candidates] == [a2]
    assert [c.mailbox_id for c in pinned.candidates] == [a1]


async def test_any_other_driver_statement_naming_them_makes_the_book_read_again(
    store: SqlStore, world: World
) -> None:
    """Health and warmup changes go through SQLAlchemy; a statement on the driver that
    names the mailboxes, and is not one the book accounts for, counts the same."""
    a1, a2 = world.a1.id, world.a2.id
    pause = Sql("UPDATE mailboxes SET health = 0 WHERE id = :mailbox")
    assert pause.forgets_mailboxes
    async with store.write() as tx:
        await context(tx, world)
        await tx.driver.run(pause, {"mailbox": a2})
        assert shortlist((await context(tx, world)).candidates) == {a1: (50, 50, 0)}
    assert await written(store, world) == {a1: (50, 50, 0)}
