"""Orgs, API keys, identities, mailboxes and the daily usage counters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailpool_server.service.models import Contact, IdentityState
from mailpool_server.service.ports import SendContext, Store, Tx
from tests.store.contract.seed import (
    DAY,
    REFUSED,
    SMTP,
    T0,
    World,
    api_key,
    identity,
    mailbox,
    org,
)

# -- orgs and keys -------------------------------------------------------------------


async def test_an_org_is_found_by_its_name(store: Store) -> None:
    acme = org(1, name="acme")
    async with store.write() as tx:
        await tx.add_org(acme)
    async with store.read() as tx:
        assert await tx.org_by_name("acme") == acme
        assert await tx.org_by_name("ACME") == acme  # names compare regardless of case
        assert await tx.org_by_name("other") is None


async def test_org_names_and_key_hashes_are_unique(store: Store) -> None:
    async with store.write() as tx:
        await tx.add_org(org(1, name="acme"))
        await tx.add_api_key(api_key("org_1", 1))
    for taken in ("acme", "ACME"):
        with pytest.raises(REFUSED):
            async with store.write() as tx:
                await tx.add_org(org(2, name=taken))
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_api_key(
                replace(api_key("org_1", 2), key_hash=api_key("org_1", 1).key_hash)
            )
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_api_key(api_key("org_missing", 3))


async def test_a_key_is_found_by_its_hash_with_every_field(store: Store) -> None:
    key = api_key("org_1", 1, expires_at=T0 + 1000)
    async with store.write() as tx:
        await tx.add_org(org(1))
        await tx.add_api_key(key)
    async with store.read() as tx:
        assert await tx.api_key_by_hash(key.key_hash) == key
        assert await tx.api_key_by_hash("0" * 64) is None


async def test_keys_of_an_org_are_listed_oldest_first(store: Store) -> None:
    async with store.write() as tx:
        await tx.add_org(org(1))
        await tx.add_org(org(2))
        # Inserted out of order; ties on created_at fall back to the id.
        await tx.add_api_key(api_key("org_1", 3, created_at=T0 + 5))
        await tx.add_api_key(api_key("org_1", 2, created_at=T0))
        await tx.add_api_key(api_key("org_1", 1, created_at=T0))
        await tx.add_api_key(api_key("org_2", 4))
    async with store.read() as tx:
        assert [k.id for k in await tx.api_keys_of("org_1")] == ["key_1", "key_2", "key_3"]
        assert [k.id for k in await tx.api_keys_of("org_2")] == ["key_4"]
        assert await tx.api_keys_of("org_missing") == []


async def test_revoking_a_key_keeps_the_first_revocation_time(store: Store) -> None:
    async with store.write() as tx:
        await tx.add_org(org(1))
        await tx.add_api_key(api_key("org_1", 1))
        await tx.add_api_key(api_key("org_1", 2))
    async with store.write() as tx:
        await tx.revoke_api_key("key_1", T0 + 10)
        await tx.revoke_api_key("key_missing", T0 + 10)  # nothing to revoke: no error
    async with store.write() as tx:
        await tx.revoke_api_key("key_1", T0 + 20)
    async with store.read() as tx:
        first, second = await tx.api_keys_of("org_1")
    assert first.revoked_at == T0 + 10
    assert not first.usable_at(T0 + 10)
    assert second.revoked_at is None


# -- identities ----------------------------------------------------------------------


async def test_an_identity_is_found_by_handle_locked_or_not(store: Store, world: World) -> None:
    async with store.read() as tx:
        assert await tx.identity_by_handle("alice@mailpool.test") == world.identity
        assert await tx.identity_by_handle("ALICE@mailpool.test") is None  # callers normalize
    async with store.write() as tx:
        assert await tx.identity_by_handle("alice@mailpool.test", lock=True) == world.identity
        assert await tx.identity_by_handle("nobody@mailpool.test", lock=True) is None
        assert await tx.lock_identity(world.identity.id) == world.identity
        with pytest.raises(LookupError):
            await tx.lock_identity("idn_missing")


async def test_handles_are_unique_and_identities_need_their_org(store: Store, world: World) -> None:
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_identity(replace(world.identity, id="idn_other"))
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_identity(identity("org_missing", "carol@mailpool.test"))


async def test_identities_of_an_org_page_by_handle(store: Store) -> None:
    # Handles whose order is the same under every collation (see the report on
    # PostgreSQL databases created with a linguistic collation).
    handles = ["d3@x.test", "a1@x.test", "c2@x.test", "b0@x.test", "e9@x.test"]
    async with store.write() as tx:
        await tx.add_org(org(1))
        await tx.add_org(org(2))
        for n, handle in enumerate(handles):
            await tx.add_identity(identity("org_1", handle, n=n))
        await tx.add_identity(identity("org_2", "a0@y.test", n=99))
    pages = []
    after = ""
    async with store.read() as tx:
        while page := await tx.identities_of("org_1", after, 2):
            pages.append([i.handle for i in page])
            after = page[-1].handle
        assert await tx.identities_of("org_1", "", 0) == []
        assert await tx.identities_of("org_missing", "", 10) == []
    assert pages == [["a1@x.test", "b0@x.test"], ["c2@x.test", "d3@x.test"], ["e9@x.test"]]


async def test_identity_state_and_working_hours_change(store: Store, world: World) -> None:
    alice = world.identity
    async with store.write() as tx:
        await tx.set_identity_state(alice.id, IdentityState.SUSPENDED)
        await tx.set_working_hours(alice.id, "Europe/Paris", 9 * 60, 17 * 60 + 30)
        await tx.set_identity_state("idn_missing", IdentityState.ACTIVE)  # no row: no error
    async with store.read() as tx:
        assert await tx.identity_by_handle(alice.handle) == replace(
            alice,
            state=IdentityState.SUSPENDED,
            timezone="Europe/Paris",
            work_start_min=540,
            work_end_min=1050,
        )
    async with store.write() as tx:
        await tx.set_working_hours(alice.id, None, None, None)
    async with store.read() as tx:
        cleared = await tx.identity_by_handle(alice.handle)
    assert cleared == replace(alice, state=IdentityState.SUSPENDED)


# -- mailboxes -----------------------------------------------------------------------


async def test_a_mailbox_is_found_by_email_with_its_smtp_settings(
    store: Store, world: World
) -> None:
    smtp_box = mailbox(
        world.identity.id,
        "s1@mailboxes.example",
        smtp=SMTP,
        warmup_stage=2,
        health=77,
        cold_next_at=T0 + 5,
        qualifying_days=1,
        closed_through="2026-04-26",
    )
    async with store.write() as tx:
        await tx.add_mailbox(smtp_box)
    async with store.read() as tx:
        assert await tx.mailbox_by_email("s1@mailboxes.example") == smtp_box
        assert await tx.mailbox_by_email(world.a1.email) == world.a1
        assert await tx.mailbox_by_email("nobody@mailboxes.example") is None


async def test_mailbox_emails_are_unique_and_mailboxes_need_their_identity(
    store: Store, world: World
) -> None:
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_mailbox(replace(world.a1, id="acc_other"))
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_mailbox(mailbox("idn_missing", "x@mailboxes.example"))


async def test_mailboxes_of_identities_come_oldest_first(store: Store, world: World) -> None:
    bob = identity(world.org.id, "bob@mailpool.test")
    async with store.write() as tx:
        await tx.add_identity(bob)
        await tx.add_mailbox(mailbox(bob.id, "b1@mailboxes.example", created_at=T0))
        await tx.add_mailbox(mailbox(bob.id, "b0@mailboxes.example", created_at=T0 + 1))
    async with store.read() as tx:
        assert await tx.mailboxes_of([world.identity.id]) == list(world.mailboxes)
        both = await tx.mailboxes_of([world.identity.id, bob.id])
        assert await tx.mailboxes_of([]) == []
    assert [m.email for m in both] == [
        "b1@mailboxes.example",  # T0
        "a1@mailboxes.example",  # T0 + 1
        "b0@mailboxes.example",  # T0 + 1, id acc_a1 < acc_b0
        "a2@mailboxes.example",  # T0 + 2
    ]


async def test_cold_next_moves(store: Store, world: World) -> None:
    async with store.write() as tx:
        await tx.set_mailbox_cold_next(world.a1.id, T0 + 60_000)
    async with store.read() as tx:
        assert await tx.mailbox_by_email(world.a1.email) == replace(
            world.a1, cold_next_at=T0 + 60_000
        )
        assert await tx.mailbox_by_email(world.a2.email) == world.a2


# -- usage counters ------------------------------------------------------------------


async def test_identity_usage_counts_up_to_the_cap_and_refuses_past_it(
    store: Store, world: World
) -> None:
    alice = world.identity.id
    async with store.read() as tx:
        assert await tx.identity_used([alice], DAY) == {}
    async with store.write() as tx:
        assert await tx.add_identity_usage(alice, DAY, 3, 5)
        assert await tx.add_identity_usage(alice, DAY, 2, 5)  # exactly the cap
        assert not await tx.add_identity_usage(alice, DAY, 1, 5)  # one past it
        assert not await tx.add_identity_usage(alice, "2026-04-28", 6, 5)  # never fits
        assert await tx.identity_used([alice], DAY) == {alice: 5}  # a refusal changes nothing
    async with store.read() as tx:
        assert await tx.identity_used([alice, "idn_missing"], DAY) == {alice: 5}
        assert await tx.identity_used([alice], "2026-04-28") == {}


async def test_mailbox_usage_counts_per_mailbox_and_day(store: Store, world: World) -> None:
    a1, a2 = world.a1.id, world.a2.id
    async with store.write() as tx:
        assert await tx.add_mailbox_usage(a1, DAY, 4, 5)
        assert not await tx.add_mailbox_usage(a1, DAY, 2, 5)
        assert await tx.add_mailbox_usage(a1, DAY, 1, 5)
        assert await tx.add_mailbox_usage(a2, DAY, 5, 5)
        assert await tx.add_mailbox_usage(a1, "2026-04-28", 1, 5)
        assert not await tx.add_mailbox_usage(a2, "2026-04-28", 6, 5)
    async with store.read() as tx:
        assert await tx.mailboxes_sent([a1, a2], DAY) == {a1: 5, a2: 5}
        assert await tx.mailboxes_sent([a1, a2], "2026-04-28") == {a1: 1}
        assert await tx.mailboxes_sent([], DAY) == {}


async def test_usage_counters_need_their_owner(store: Store, world: World) -> None:
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_identity_usage("idn_missing", DAY, 1, 5)
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_mailbox_usage("acc_missing", DAY, 1, 5)


async def test_usage_of_a_range_of_days(store: Store, world: World) -> None:
    alice, (a1, a2) = world.identity.id, (world.a1.id, world.a2.id)
    async with store.write() as tx:
        for day, count in [("2026-04-24", 9), ("2026-04-25", 3), ("2026-04-27", 4)]:
            assert await tx.add_identity_usage(alice, day, count, 150)
        for box, day, count in [
            (a1, "2026-04-25", 2),
            (a2, "2026-04-25", 1),
            (a1, "2026-04-27", 4),
            (a2, "2026-04-28", 5),
        ]:
            assert await tx.add_mailbox_usage(box, day, count, 50)
    async with store.read() as tx:
        assert await tx.identity_used_days(alice, "2026-04-25", "2026-04-27") == {
            "2026-04-25": 3,
            "2026-04-27": 4,
        }
        assert await tx.identity_used_days("idn_missing", "2026-04-25", "2026-04-27") == {}
        assert await tx.mailboxes_sent_days([a1, a2], "2026-04-25", "2026-04-27") == {
            (a1, "2026-04-25"): 2,
            (a2, "2026-04-25"): 1,
            (a1, "2026-04-27"): 4,
        }
        assert await tx.mailboxes_sent_days([a2], "2026-04-26", "2026-04-26") == {}
        assert await tx.mailboxes_sent_days([], "2026-04-25", "2026-04-27") == {}


async def test_send_candidates_are_the_pinned_then_the_best_with_cap_left(
    store: Store, world: World
) -> None:
    """Healthy mailboxes with cap left today: the pinned ones (given, or pinned by a
    recipient's contact), then by remaining x (stage + 1), age rank breaking ties; as
    many as asked for beside the pinned ones. Their order in the list is no part of
    it: the picker scores them itself."""
    boxes = [
        mailbox(world.identity.id, "b1@mailboxes.example", created_at=T0 + 3, warmup_stage=0),
        mailbox(world.identity.id, "b2@mailboxes.example", created_at=T0 + 4, health=19),
        mailbox(world.identity.id, "b3@mailboxes.example", created_at=T0 + 5, warmup_stage=2),
    ]
    a1, a2, b1, b3 = world.a1.id, world.a2.id, boxes[0].id, boxes[2].id
    alice, org_id = world.identity.id, world.org.id
    async with store.write() as tx:
        for box in boxes:
            await tx.add_mailbox(box)
        assert await tx.add_mailbox_usage(a1, DAY, 10, 50)  # 40 left x 6 = 240
        assert await tx.add_mailbox_usage(b3, DAY, 20, 20)  # none left
        # a2: 50 x 6 = 300; b1: 5 x 1 = 5; b2: below the health threshold.
        await tx.save_contact(Contact(alice, "bob@example.com", b1, 1, 1))

    def shortlist(known: SendContext) -> dict[str, tuple[int, int]]:
        return {c.mailbox_id: (c.remaining, c.daily_cap) for c in known.candidates}

    async def contexts(tx: Tx) -> list[SendContext]:
        return [
            await tx.send_context(org_id, alice, DAY, [], want=9),
            await tx.send_context(org_id, alice, DAY, [], want=1),
            await tx.send_context(org_id, alice, DAY, [], want=1, pinned=(b1, b3)),
            await tx.send_context(org_id, alice, DAY, ["bob@example.com"], want=1),
            await tx.send_context(org_id, alice, DAY, [], want=0),
            await tx.send_context(org_id, alice, "2026-04-28", [], want=9),
            await tx.send_context(org_id, alice, "2026-04-28", [], want=1),
        ]

    async with store.read() as tx:
        read = await contexts(tx)
    # A send asks in a write unit (where SQLite's writer answers from its mailbox book).
    async with store.write() as tx:
        written = await contexts(tx)
    assert [shortlist(known) for known in written] == [shortlist(known) for known in read]
    everyone, best, pinned, by_contact, none_wanted, tomorrow, tomorrow_best = read

    assert shortlist(everyone) == {a2: (50, 50), a1: (40, 50), b1: (5, 5)}
    ages = {c.mailbox_id: c.order for c in everyone.candidates}
    assert ages[a1] < ages[a2] < ages[b1]
    assert all(not c.excluded for c in everyone.candidates)
    assert set(shortlist(best)) == {a2}
    # b3 has no cap left: pinned or not, it is not a candidate (and the list may
    # hold the next best in its place: at most want + the pinned mailboxes in all).
    assert {b1, a2} <= set(shortlist(pinned)) and b3 not in shortlist(pinned)
    assert len(pinned.candidates) <= 3
    # bob's contact pins b1: it is a candidate beside the best one.
    assert set(shortlist(by_contact)) == {b1, a2}
    assert none_wanted.candidates == []
    # A new day: b3 has its cap back, and a1 and a2 tie at 50 x 6: the older one wins.
    assert shortlist(tomorrow) == {a1: (50, 50), a2: (50, 50), b3: (20, 20), b1: (5, 5)}
    assert set(shortlist(tomorrow_best)) == {a1}
