"""Units of work: a write is all or nothing, a read sees only what was committed, and a
contended lock honours the write's lock timeout."""

from __future__ import annotations

import asyncio

import pytest

from mailpool_server.service.events import EmailNoReply, NewEvent
from mailpool_server.service.models import Contact
from mailpool_server.service.ports import Store, Tx, WriteLockTimeout
from tests.store.contract.seed import (
    DAY,
    T0,
    Abandoned,
    World,
    abandoned_write,
    identity,
    mailbox,
    org,
)


async def test_a_raising_write_leaves_nothing(store: Store, world: World) -> None:
    carol = identity(world.org.id, "carol@mailpool.test")

    async def work(tx: Tx) -> None:
        await tx.add_org(org(2))
        await tx.add_identity(carol)
        await tx.add_mailbox(mailbox(carol.id, "c1@mailboxes.example"))
        await tx.add_identity_usage(world.identity.id, DAY, 3, 10)
        await tx.save_contact(Contact(world.identity.id, "bob@example.com"))
        await tx.append_events(world.identity, [NewEvent(None, EmailNoReply(1))], T0)
        await tx.set_mailbox_cold_next(world.a1.id, T0 + 9)

    await abandoned_write(store, work)
    async with store.read() as tx:
        assert await tx.org_by_name("org 2") is None
        assert await tx.identity_by_handle(carol.handle) is None
        assert await tx.mailbox_by_email("c1@mailboxes.example") is None
        assert await tx.identity_used([world.identity.id], DAY) == {}
        assert await tx.contacts_among(world.identity.id, ["bob@example.com"]) == {}
        assert await tx.head_seqs([world.identity.id]) == {world.identity.id: 0}
        assert await tx.events_after(world.identity, 0, (), 10) == []
        assert await tx.mailbox_by_email(world.a1.email) == world.a1


async def test_a_write_sees_its_own_changes_and_a_read_only_committed_ones(
    store: Store, world: World
) -> None:
    async with store.write() as tx:
        await tx.add_org(org(2))
        assert await tx.org_by_name("org 2") == org(2)
        async with store.read() as reader:
            assert await reader.org_by_name("org 2") is None
    async with store.read() as reader:
        assert await reader.org_by_name("org 2") == org(2)


async def test_a_failed_write_leaves_concurrent_writes_alone(store: Store, world: World) -> None:
    """On SQLite concurrent writers share one transaction (group commit): the one that
    raises must roll back alone."""

    async def add_org(n: int, *, fail: bool) -> None:
        async with store.write() as tx:
            await tx.add_org(org(n))
            await asyncio.sleep(0)  # let the other writers queue up behind this one
            if fail:
                raise Abandoned

    results = await asyncio.gather(
        *(add_org(n, fail=n % 2 == 0) for n in range(2, 8)), return_exceptions=True
    )
    assert [type(r) for r in results] == [Abandoned, type(None)] * 3
    async with store.read() as tx:
        present = [n for n in range(2, 8) if await tx.org_by_name(f"org {n}") is not None]
    assert present == [3, 5, 7]


async def test_a_contended_identity_lock_honours_the_lock_timeout(
    store: Store, world: World
) -> None:
    async with store.write() as holder:
        await holder.lock_identity(world.identity.id)
        with pytest.raises(WriteLockTimeout):
            async with store.write(lock_timeout_s=0.05) as waiter:
                await waiter.lock_identity(world.identity.id)


async def test_a_read_sees_one_snapshot(store: Store, world: World) -> None:
    """Statements of one read agree with each other: a commit in between is not seen."""
    async with store.read() as reader:
        assert await reader.org_by_name("org 2") is None
        async with store.write() as tx:
            await tx.add_org(org(2))
        assert await reader.org_by_name("org 2") is None


async def test_a_read_begins_its_view_at_its_first_statement(store: Store, world: World) -> None:
    """Not when the block opens: a commit before the first statement is seen."""
    async with store.read() as reader:
        async with store.write() as tx:
            await tx.add_org(org(2))
        assert await reader.org_by_name("org 2") == org(2)
