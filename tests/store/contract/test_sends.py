"""What one send writes besides conversations and events: idempotency keys,
do-not-contact entries, contacts and queued sends."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from mailpool_server.service.models import (
    Affinity,
    Contact,
    MailboxRef,
    PendingStatus,
    QueuedRecipient,
    RecipientOutcome,
    RejectReason,
    SendClass,
    SendResult,
)
from mailpool_server.service.ports import IdempotencyRecord, SendClaim, Store, WriteLockTimeout
from tests.store.contract.seed import (
    DAY,
    REFUSED,
    T0,
    World,
    abandoned_write,
    add_thread,
    org,
    pending,
    queue_send,
)

LIFETIME = 86_400_000


def result(handle: str = "alice@mailpool.test") -> SendResult:
    """A stored send result with a queued and a rejected recipient."""
    queued = QueuedRecipient(
        pending_id="psn_0001",
        conv_id="conv_0001",
        send_class=SendClass.COLD_FIRST_CONTACT,
        affinity=Affinity.NEW,
        mailbox=MailboxRef("acc_a1", "a1@mailboxes.example"),
        dispatch_at=T0,
    )
    return SendResult(
        identity=handle,
        accepted=1,
        rejected=1,
        remaining=149,
        results=(
            RecipientOutcome("Bob@Example.com", queued=queued),
            RecipientOutcome("nope", reason=RejectReason.INVALID_RECIPIENT),
        ),
    )


async def claim(
    store: Store, org_id: str, key: str, fingerprint: str, now: int = T0
) -> IdempotencyRecord | None:
    """Claim a key and, when the claim is new, complete it with `result()`: one send."""
    async with store.write() as tx:
        existing = await tx.claim_idempotency_key(org_id, key, fingerprint, now, now + LIFETIME)
        if existing is None:
            await tx.complete_idempotency_key(org_id, key, result())
    return existing


# -- idempotency keys ----------------------------------------------------------------


async def test_a_new_key_is_claimed_and_its_completed_result_replayed(
    store: Store, world: World
) -> None:
    assert await claim(store, world.org.id, "k1", "fp1") is None
    stored = IdempotencyRecord("fp1", result(), T0 + LIFETIME)
    # A second claim (a retry, or a different body) gets the record, as does a read.
    assert await claim(store, world.org.id, "k1", "fp2", now=T0 + 1) == stored
    async with store.read() as tx:
        assert await tx.idempotency_record(world.org.id, "k1", T0 + 1) == stored
        assert await tx.idempotency_record(world.org.id, "k2", T0 + 1) is None


async def test_keys_belong_to_their_org(store: Store, world: World) -> None:
    async with store.write() as tx:
        await tx.add_org(org(2))
    assert await claim(store, world.org.id, "k1", "fp1") is None
    assert await claim(store, "org_2", "k1", "fp1") is None
    with pytest.raises(REFUSED):
        await claim(store, "org_missing", "k1", "fp1")


async def test_a_claim_not_completed_is_a_live_record_without_result(
    store: Store, world: World
) -> None:
    """What a waiting duplicate sees on PostgreSQL if the first send committed its claim
    without a result; reads never show such a claim."""
    async with store.write() as tx:
        assert await tx.claim_idempotency_key(world.org.id, "k1", "fp1", T0, T0 + LIFETIME) is None
    async with store.read() as tx:
        assert await tx.idempotency_record(world.org.id, "k1", T0) is None
    async with store.write() as tx:
        again = await tx.claim_idempotency_key(world.org.id, "k1", "fp1", T0, T0 + LIFETIME)
    assert again == IdempotencyRecord("fp1", None, T0 + LIFETIME)


async def test_an_expired_key_starts_a_new_life(store: Store, world: World) -> None:
    assert await claim(store, world.org.id, "k1", "fp1") is None
    expiry = T0 + LIFETIME
    async with store.read() as tx:
        assert await tx.idempotency_record(world.org.id, "k1", expiry - 1) is not None
        assert await tx.idempotency_record(world.org.id, "k1", expiry) is None  # expires_at > now
    async with store.write() as tx:
        assert await tx.claim_idempotency_key(world.org.id, "k1", "fp2", expiry, expiry + 5) is None
        await tx.complete_idempotency_key(world.org.id, "k1", result("new@mailpool.test"))
    async with store.read() as tx:
        renewed = await tx.idempotency_record(world.org.id, "k1", expiry)
    assert renewed == IdempotencyRecord("fp2", result("new@mailpool.test"), expiry + 5)


async def test_a_sends_claim_locks_its_identity_once_the_key_is_its(
    store: Store, world: World
) -> None:
    org_id, handle = world.org.id, world.identity.handle

    async def claim_for_send(key: str, now: int = T0, handle: str = handle) -> SendClaim:
        async with store.write() as tx:
            claim = await tx.claim_for_send(org_id, key, "fp1", now, now + LIFETIME, handle)
            if claim.existing is None:
                await tx.complete_idempotency_key(org_id, key, result())
        return claim

    new = await claim_for_send("k1")
    assert new.existing is None and new.identity == world.identity
    # The key is taken now: its record, and no identity looked up.
    assert await claim_for_send("k1") == SendClaim(
        IdempotencyRecord("fp1", result(), T0 + LIFETIME), None
    )
    # An unknown handle: the key is claimed all the same (the send then fails and
    # rolls it back), and there is no identity.
    assert await claim_for_send("k2", handle="nobody@mailpool.test") == SendClaim(None, None)
    # Past the key's lifetime the claim is new again, with the identity.
    revived = await claim_for_send("k1", now=T0 + LIFETIME)
    assert revived.existing is None and revived.identity == world.identity


async def test_a_rolled_back_claim_leaves_the_key_free(store: Store, world: World) -> None:
    await abandoned_write(
        store, lambda tx: tx.claim_idempotency_key(world.org.id, "k1", "fp1", T0, T0 + LIFETIME)
    )
    assert await claim(store, world.org.id, "k1", "fp2") is None


async def test_a_contended_claim_times_out_with_write_lock_timeout(
    store: Store, world: World
) -> None:
    """The first claim holds the key until its transaction ends; a duplicate asking for a
    lock timeout gets WriteLockTimeout (SQLite and memory: at the write turn;
    PostgreSQL: at the unique key)."""
    async with store.write() as first:
        await first.claim_idempotency_key(world.org.id, "k1", "fp1", T0, T0 + LIFETIME)
        with pytest.raises(WriteLockTimeout):
            async with store.write(lock_timeout_s=0.05) as second:
                await second.claim_idempotency_key(world.org.id, "k1", "fp1", T0, T0 + LIFETIME)
        await first.complete_idempotency_key(world.org.id, "k1", result())


async def test_a_waiting_claim_gets_the_record_the_first_committed(
    store: Store, world: World
) -> None:
    first_claimed = asyncio.Event()
    release = asyncio.Event()

    async def first() -> IdempotencyRecord | None:
        async with store.write() as tx:
            mine = await tx.claim_idempotency_key(world.org.id, "k1", "fp1", T0, T0 + LIFETIME)
            first_claimed.set()
            await release.wait()
            await tx.complete_idempotency_key(world.org.id, "k1", result())
        return mine

    first_task = asyncio.create_task(first())
    await first_claimed.wait()
    duplicate = asyncio.create_task(claim(store, world.org.id, "k1", "fp1"))
    await asyncio.sleep(0.05)  # let the duplicate reach its wait (a turn, or the key)
    assert not duplicate.done()
    release.set()
    assert await first_task is None
    assert await duplicate == IdempotencyRecord("fp1", result(), T0 + LIFETIME)


# -- do not contact, contacts ----------------------------------------------------------


async def test_do_not_contact_is_per_org_and_adding_twice_is_harmless(
    store: Store, world: World
) -> None:
    async with store.write() as tx:
        await tx.add_org(org(2))
        await tx.add_do_not_contact(world.org.id, "bob@example.com", "hard_bounce", T0)
        await tx.add_do_not_contact(world.org.id, "bob@example.com", "complaint", T0 + 1)
        await tx.add_do_not_contact("org_2", "carol@example.com", "hard_bounce", T0)
    async with store.read() as tx:
        among = ["bob@example.com", "carol@example.com", "dan@example.com"]
        alice = world.identity.id
        assert (await tx.send_context(world.org.id, alice, DAY, among)).blocked == {
            "bob@example.com"
        }
        for_org_2 = await tx.send_context("org_2", alice, DAY, among)
        assert for_org_2.blocked == {"carol@example.com"}
        assert (await tx.send_context(world.org.id, alice, DAY, [])).blocked == set()
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_do_not_contact("org_missing", "bob@example.com", "x", T0)


async def test_contacts_are_saved_whole_and_read_per_identity(store: Store, world: World) -> None:
    alice = world.identity.id
    bob = Contact(alice, "bob@example.com", world.a1.id, outbound_count=1, outbounds_since_reply=1)
    carol = Contact(alice, "carol@example.com")
    async with store.write() as tx:
        await tx.save_contact(bob)
        await tx.save_contact(carol)
    replied = Contact(alice, "bob@example.com", world.a2.id, 4, 0, last_reply_at=T0 + 9)
    async with store.write() as tx:
        await tx.save_contact(replied)  # an upsert: every field is replaced
        await tx.add_do_not_contact(world.org.id, "carol@example.com", "complaint", T0)
    among = ["bob@example.com", "carol@example.com", "x@y.z"]
    async with store.read() as tx:
        found = await tx.contacts_among(alice, among)
        known = await tx.send_context(world.org.id, alice, DAY, among)
        assert await tx.contacts_among(alice, []) == {}
        assert await tx.contacts_among("idn_other", ["bob@example.com"]) == {}
    assert found == {"bob@example.com": replied, "carol@example.com": carol}
    # A send's one look: the same contacts, and the org's do-not-contact entries.
    assert known.contacts == found and known.blocked == {"carol@example.com"}


async def test_a_sends_context_carries_the_identitys_usage_of_the_day(
    store: Store, world: World
) -> None:
    alice = world.identity.id
    async with store.write() as tx:
        await tx.add_identity_usage(alice, DAY, 7, 100)
        await tx.add_identity_usage(alice, "2026-04-26", 30, 100)
        await tx.add_do_not_contact(world.org.id, "bob@example.com", "complaint", T0)
        await tx.save_contact(Contact(alice, "carol@example.com"))
        # Inside the writing unit, as a send reads it under its lock: its own writes count.
        inside = await tx.send_context(world.org.id, alice, DAY, ["bob@example.com"])
        assert inside.used == 7 and inside.blocked == {"bob@example.com"}
    among = ["bob@example.com", "carol@example.com"]
    async with store.read() as tx:
        today = await tx.send_context(world.org.id, alice, DAY, among)
        assert today.used == 7 and today.blocked == {"bob@example.com"}
        assert set(today.contacts) == {"carol@example.com"}
        assert (await tx.send_context(world.org.id, alice, "2026-04-28", among)).used == 0
        assert (await tx.send_context(world.org.id, alice, "2026-04-26", [])).used == 30
        # Another identity's usage is its own (none here).
        assert (await tx.send_context(world.org.id, "idn_other", DAY, among)).used == 0


async def test_contacts_need_their_identity_and_pinned_mailbox(store: Store, world: World) -> None:
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.save_contact(Contact("idn_missing", "bob@example.com"))
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.save_contact(Contact(world.identity.id, "bob@example.com", "acc_missing"))


# -- queued sends ----------------------------------------------------------------------


async def test_a_queued_send_is_stored_as_queued(store: Store, world: World) -> None:
    send = await queue_send(store, world, 1)
    async with store.read() as tx:
        assert await tx.pending_status(send.id) is PendingStatus.QUEUED
        assert await tx.pending_status("psn_missing") is None


async def test_a_queued_send_needs_its_rows(store: Store, world: World) -> None:
    thread = await add_thread(store, world, 1)
    good = pending(thread.message, world.identity.id, world.a1.id, 1)
    for broken in (
        replace(good, message_id="msg_missing"),
        replace(good, mailbox_id="acc_missing"),
        replace(good, conv_id="conv_ffff"),
        replace(good, identity_id="idn_missing"),
    ):
        with pytest.raises(REFUSED):
            async with store.write() as tx:
                await tx.add_pending_send(broken)
    async with store.write() as tx:
        await tx.add_pending_send(good)
    with pytest.raises(REFUSED):  # the same id twice
        async with store.write() as tx:
            await tx.add_pending_send(good)
