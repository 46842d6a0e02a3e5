"""SQLite's batched inserts: the rows a unit of work hands to its batch (conversations,
messages, timeline, queued sends, events) are kept and written together, yet every
statement in the batch that could see them reads them, a unit that rolls back takes
only its own rows with it, and the COMMIT makes them all durable."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from mailpool_server.service.ports import Tx
from mailpool_server.store.sql_store import SqlStore
from mailpool_server.store.sqlite_db import SqliteDatabase
from tests.store.batches import one_batch
from tests.store.contract.seed import World, conversation, message, pending, seed_world


class UnitFailed(Exception):
    pass


@pytest.fixture
async def world(store: SqlStore) -> World:
    return await seed_world(store)


def thread(world: World, n: int) -> tuple[Any, Any, Any]:
    conv = conversation(world.identity.id, world.a1.id, f"lead{n}@example.com", n)
    msg = message(conv.id, n, to=(conv.correspondent,))
    return conv, msg, pending(msg, world.identity.id, world.a1.id, n)


async def add_thread(tx: Tx, world: World, n: int) -> None:
    conv, msg, send = thread(world, n)
    await tx.add_conversation(conv)
    await tx.add_message(msg)
    await tx.add_pending_send(send)


async def stored(store: SqlStore, world: World, *ns: int) -> set[int]:
    """Which of the threads are stored, committed, each row of them."""
    found = set()
    async with store.read() as tx:
        for n in ns:
            conv, msg, send = thread(world, n)
            rows = (
                await tx.conversation_by_id(conv.id),
                await tx.message_by_header(world.identity.id, msg.message_id_header),
                await tx.pending_ref(send.id),
            )
            assert all(row is None for row in rows) or all(row is not None for row in rows)
            if rows[0] is not None:
                found.add(n)
    return found


async def test_later_units_in_the_batch_read_the_rows_kept_for_it(
    store: SqlStore, database: SqliteDatabase, world: World
) -> None:
    conv, msg, send = thread(world, 1)

    async def read_with_sqlalchemy(tx: Tx) -> tuple[object, ...]:
        return (
            await tx.message_by_header(world.identity.id, msg.message_id_header),
            await tx.pending_ref(send.id),
        )

    async def read_with_the_driver(tx: Tx) -> object:
        return await tx.conversation_by_id(conv.id)

    _, message_and_send, _, found = await one_batch(
        store,
        database,
        lambda tx: add_thread(tx, world, 1),
        read_with_sqlalchemy,
        lambda tx: add_thread(tx, world, 2),
        read_with_the_driver,
    )
    assert message_and_send[0] == msg and message_and_send[1].recipient == send.recipient
    assert found == conv
    assert await stored(store, world, 1, 2) == {1, 2}


async def test_a_unit_that_rolls_back_takes_only_its_own_rows(
    store: SqlStore, database: SqliteDatabase, world: World
) -> None:
    async def read_then_fail(tx: Tx) -> None:
        await add_thread(tx, world, 2)
        # Names conversations: the batch's rows (the first unit's, its own) are written
        # now, inside this unit's savepoint, and undone with it.
        assert await tx.conversation_by_id(thread(world, 1)[0].id) is not None
        assert await tx.conversation_by_id(thread(world, 2)[0].id) is not None
        raise UnitFailed

    async def read_after(tx: Tx) -> object:
        await add_thread(tx, world, 3)
        return await tx.conversation_by_id(thread(world, 1)[0].id)

    outcomes = await one_batch(
        store, database, lambda tx: add_thread(tx, world, 1), read_then_fail, read_after
    )
    assert isinstance(outcomes[1], UnitFailed)
    assert outcomes[2] == thread(world, 1)[0]
    assert await stored(store, world, 1, 2, 3) == {1, 3}


async def test_rows_are_written_parents_first_whatever_order_they_came_in(
    store: SqlStore, database: SqliteDatabase, world: World
) -> None:
    async with store.write() as tx:
        await tx.add_conversation(thread(world, 1)[0])
    reply = message(thread(world, 1)[0].id, 9, to=("lead1@example.com",))
    # The first unit hands over only a message; the second a conversation, then its
    # message, which references it: written in arrival order the second message would
    # come before its conversation.
    await one_batch(
        store,
        database,
        lambda tx: tx.add_message(reply),
        lambda tx: add_thread(tx, world, 2),
    )
    assert await stored(store, world, 2) == {2}
    async with store.read() as tx:
        assert await tx.message_by_header(world.identity.id, reply.message_id_header) == reply


async def test_a_kept_row_that_cannot_be_written_fails_the_whole_batch(
    store: SqlStore, database: SqliteDatabase, world: World
) -> None:
    async def same_conversation_again(tx: Tx) -> None:
        await tx.add_conversation(thread(world, 1)[0])

    outcomes = await one_batch(
        store,
        database,
        lambda tx: add_thread(tx, world, 1),
        lambda tx: add_thread(tx, world, 2),
        same_conversation_again,
    )
    assert all(isinstance(outcome, IntegrityError | sqlite3.IntegrityError) for outcome in outcomes)
    assert await stored(store, world, 1, 2) == set()
    async with store.write() as tx:  # the writer is usable again, nothing left kept
        await add_thread(tx, world, 3)
    assert await stored(store, world, 1, 2, 3) == {3}


async def test_rows_wait_until_a_statement_names_their_table(
    store: SqlStore, database: SqliteDatabase, world: World
) -> None:
    async def count_on_the_writer(tx: Tx) -> tuple[int, int]:
        raw = tx.driver.raw  # type: ignore[attr-defined]
        # A statement that bypasses the driver: what the table really holds so far.
        before = raw.execute("SELECT count(*) FROM conversations").fetchone()[0]
        await tx.conversation_by_id("conv_none")
        after = raw.execute("SELECT count(*) FROM conversations").fetchone()[0]
        return before, after

    _, _, counts = await one_batch(
        store,
        database,
        lambda tx: add_thread(tx, world, 1),
        lambda tx: add_thread(tx, world, 2),
        count_on_the_writer,
    )
    assert counts == (0, 2)
