"""Units of work made to share one SQLite batch (one COMMIT)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mailpool_server.service.ports import Tx
from mailpool_server.store.sql_store import SqlStore
from mailpool_server.store.sqlite_db import SqliteDatabase


async def one_batch(
    store: SqlStore, database: SqliteDatabase, *works: Callable[[Tx], Awaitable[Any]]
) -> list[Any]:
    """Run each work in a write unit of its own, in order, all in one batch (queued
    behind a unit that holds the writer until they all wait): their results, or the
    error each raised."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with store.write():
            holding.set()
            await release.wait()

    async def unit(work: Callable[[Tx], Awaitable[Any]]) -> Any:
        async with store.write() as tx:
            return await work(tx)

    batches = database.stats.batches
    first = asyncio.create_task(holder())
    await holding.wait()
    # The units' first steps run before the holder wakes (the loop runs ready tasks in
    # order), so each is queued for the writer by then.
    tasks = [asyncio.create_task(unit(work)) for work in works]
    release.set()
    outcomes = await asyncio.gather(first, *tasks, return_exceptions=True)
    if all(not isinstance(outcome, BaseException) for outcome in outcomes):
        assert database.stats.batches == batches + 1, "the units shared one COMMIT"
    return list(outcomes[1:])
