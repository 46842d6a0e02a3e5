"""SQLite's group commit: writers share a transaction (a savepoint each) and one
COMMIT, and none of them is answered before that COMMIT is on disk."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from mailpool_server.service.models import Identity, IdentityState, Org
from mailpool_server.service.policy import Tier
from mailpool_server.service.ports import WriteLockTimeout
from mailpool_server.store.sql_store import SqlStore
from mailpool_server.store.sqlite_db import SqliteDatabase


class UnitFailed(Exception):
    pass


async def add_org(store: SqlStore, name: str, *, fail: bool = False) -> None:
    async with store.write() as tx:
        await tx.add_org(Org(id=f"org_{name}", name=name, created_at=0))
        if fail:
            raise UnitFailed(name)


async def org_names(store: SqlStore, *names: str) -> set[str]:
    async with store.read() as tx:
        return {name for name in names if await tx.org_by_name(name) is not None}


class Holder:
    """A writer that holds its turn (its unit of work open) until released."""

    def __init__(self, store: SqlStore, name: str) -> None:
        self.inside = asyncio.Event()
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self._run(store, name))

    async def _run(self, store: SqlStore, name: str) -> None:
        async with store.write() as tx:
            await tx.add_org(Org(id=f"org_{name}", name=name, created_at=0))
            self.inside.set()
            await self.release.wait()


async def test_concurrent_writers_share_commits_and_all_land(
    store: SqlStore, database: SqliteDatabase
) -> None:
    names = [f"w{n}" for n in range(20)]
    await asyncio.gather(*(add_org(store, name) for name in names))
    assert await org_names(store, *names) == set(names)
    assert database.stats.units == 20
    assert database.stats.batches < 20


async def test_a_failing_unit_is_undone_alone(store: SqlStore) -> None:
    holder = Holder(store, "first")
    await holder.inside.wait()
    # Queued behind the holder, so all three units land in one transaction.
    ok = asyncio.create_task(add_org(store, "ok"))
    bad = asyncio.create_task(add_org(store, "bad", fail=True))
    holder.release.set()
    await holder.task
    await ok
    with pytest.raises(UnitFailed):
        await bad
    assert await org_names(store, "first", "ok", "bad") == {"first", "ok"}


async def test_readers_see_a_batch_only_once_it_has_committed(store: SqlStore) -> None:
    holder = Holder(store, "pending")
    await holder.inside.wait()
    assert await org_names(store, "pending") == set()
    holder.release.set()
    await holder.task
    assert await org_names(store, "pending") == {"pending"}


async def test_a_failed_commit_fails_every_member_and_stores_nothing(store: SqlStore) -> None:
    holder = Holder(store, "innocent")
    await holder.inside.wait()

    async def orphan_identity() -> None:
        async with store.write() as tx:
            # A deferred foreign key is checked at COMMIT: a real failing commit.
            await tx.session.execute(text("PRAGMA defer_foreign_keys=ON"))
            await tx.add_identity(
                Identity(
                    id="idn_orphan",
                    org_id="org_missing",
                    handle="orphan@mailpool.local",
                    tier=Tier.STARTER,
                    state=IdentityState.ACTIVE,
                    created_at=0,
                )
            )

    orphan = asyncio.create_task(orphan_identity())
    bystander = asyncio.create_task(add_org(store, "bystander"))
    holder.release.set()
    for task in (holder.task, orphan, bystander):
        with pytest.raises(IntegrityError):
            await task
    assert await org_names(store, "innocent", "bystander") == set()
    await add_org(store, "after")  # the connection is usable again
    assert await org_names(store, "after") == {"after"}


async def test_a_writer_that_gives_up_waiting_strands_no_one(store: SqlStore) -> None:
    holder = Holder(store, "holder")
    await holder.inside.wait()
    with pytest.raises(WriteLockTimeout):
        async with store.write(lock_timeout_s=0.05):
            pass
    holder.release.set()
    await holder.task
    await add_org(store, "next")
    assert await org_names(store, "holder", "next") == {"holder", "next"}


async def test_another_process_holding_the_lock_does_not_stop_the_loop(
    store: SqlStore, db_path: Path
) -> None:
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        writer = asyncio.create_task(add_org(store, "patient"))
        # The loop keeps serving: a read completes while the writer waits for SQLite.
        assert await org_names(store, "patient") == set()
        assert not writer.done()
        with pytest.raises(WriteLockTimeout):
            async with store.write(lock_timeout_s=0.05):
                pass
    finally:
        other.execute("ROLLBACK")
        other.close()
    await writer
    assert await org_names(store, "patient") == {"patient"}
