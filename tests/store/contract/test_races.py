"""Races the port promises to settle (one writer wins, the other sees its result), run
with the interleaving forced. SQLite and the memory store admit one writer at a time,
so there they hold by construction; on PostgreSQL they hold only if the statements
re-check under the lock what they read before it."""

from __future__ import annotations

import asyncio

from mailpool_server.service.models import PendingStatus
from mailpool_server.service.ports import (
    CancelledSend,
    IdempotencyRecord,
    SendClaim,
    Store,
    WriteLockTimeout,
)
from tests.store.contract.locks import rows_held, until_waiting_on_locks
from tests.store.contract.seed import T0, World, queue_send
from tests.store.contract.test_sends import result

LEASE = 120_000


async def test_a_cancel_leaves_alone_a_send_that_a_claim_holds(store: Store, world: World) -> None:
    send = await queue_send(store, world, 1)

    async def cancel() -> list[CancelledSend]:
        async with store.write() as tx:
            return await tx.cancel_queued(mailbox_id=world.a1.id)

    async with store.write() as dispatcher:
        [claimed] = await dispatcher.claim_due(T0, T0 + LEASE, 10)
        cancelling = asyncio.ensure_future(cancel())
        await until_waiting_on_locks(store, 1)  # PostgreSQL: the cancel waits on the row
    assert await cancelling == []
    async with store.write() as dispatcher:
        assert await dispatcher.finish_sent(send.id, claimed.attempt, T0 + 1)
    async with store.read() as tx:
        assert await tx.pending_status(send.id) is PendingStatus.SENT


async def test_two_claims_reviving_an_expired_key_admit_one(store: Store, world: World) -> None:
    async with store.write() as tx:  # a key whose lifetime is over
        await tx.claim_idempotency_key(world.org.id, "k", "old", T0, T0 + 10)

    async def claim(fingerprint: str) -> object:
        async with store.write() as tx:
            return await tx.claim_idempotency_key(
                world.org.id, "k", fingerprint, T0 + 100, T0 + 1000
            )

    # PostgreSQL: both claims stop at the key's row after their INSERT found it taken
    # (the window is one round trip in production; the held row makes it certain here).
    async with rows_held(store, "SELECT 1 FROM idempotency_keys FOR UPDATE"):
        claims = asyncio.gather(claim("a"), claim("b"))
        await until_waiting_on_locks(store, 2)
    first, second = await claims
    assert [first is None, second is None].count(True) == 1


async def test_a_sends_claim_holds_the_key_while_it_waits_for_the_identity(
    store: Store, world: World
) -> None:
    """claim_for_send takes the key before the identity's lock, as a claim and then a
    lock would: a duplicate waits on the key holding nothing. (Had one locked the
    identity first, it and a send holding the key and waiting for the identity would
    deadlock on PostgreSQL.) Then the duplicate gets the first one's record."""
    org_id, handle = world.org.id, world.identity.handle

    async def send_claim() -> SendClaim:
        async with store.write() as tx:
            claim = await tx.claim_for_send(org_id, "k", "fp", T0, T0 + 1000, handle)
            if claim.existing is None:
                await tx.complete_idempotency_key(org_id, "k", result())
            return claim

    # PostgreSQL: the identity's row is held elsewhere, so the first send waits for it.
    async with rows_held(store, "SELECT 1 FROM identities FOR UPDATE"):
        first = asyncio.ensure_future(send_claim())
        await until_waiting_on_locks(store, 1)
        # The key is the first send's already: held (PostgreSQL: this claim times out
        # on it), or committed with its record (one writer at a time elsewhere).
        try:
            async with store.write(lock_timeout_s=0.05) as tx:
                taken = await tx.claim_idempotency_key(org_id, "k", "other", T0, T0 + 1000)
        except WriteLockTimeout:
            taken = IdempotencyRecord("fp", None, T0 + 1000)
        assert taken is not None and taken.fingerprint == "fp"
        second = asyncio.ensure_future(send_claim())
        await until_waiting_on_locks(store, 2)
    first_claim, second_claim = await first, await second
    assert first_claim.existing is None and first_claim.identity == world.identity
    assert second_claim == SendClaim(IdempotencyRecord("fp", result(), T0 + 1000), None)
