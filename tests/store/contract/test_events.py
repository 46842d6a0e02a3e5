"""The per-identity event log: seqs, reads, and every payload type's round trip."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from mailpool_server.service.events import (
    PAYLOAD_TYPES,
    BounceKind,
    CancelReason,
    EmailBounced,
    EmailCancelled,
    EmailNoReply,
    EmailQueued,
    EmailReceived,
    EmailReplied,
    EmailSendFailedPermanently,
    EmailSent,
    Event,
    EventPayload,
    EventType,
    MailboxReplaced,
    MessageBody,
    NewEvent,
    SentMessage,
)
from mailpool_server.service.models import Direction, Identity, MailboxRef, SendClass
from mailpool_server.service.ports import Store
from tests.store.contract.seed import T0, World, abandoned_write, identity, message

A1 = MailboxRef("acc_a1", "a1@mailboxes.example")


def no_reply(n: int) -> NewEvent:
    """A small event whose payload tells which one it is."""
    return NewEvent(f"conv_{n:04x}", EmailNoReply(n))


async def append(store: Store, who: Identity, *events: NewEvent, at: int = T0) -> list[Event]:
    async with store.write() as tx:
        return await tx.append_events(who, list(events), at)


async def read_log(
    store: Store, who: Identity, since: int = 0, types: tuple[str, ...] = (), limit: int = 1000
) -> list[Event]:
    async with store.read() as tx:
        return await tx.events_after(who, since, types, limit)


def every_payload() -> list[EventPayload]:
    body = MessageBody.of(
        message(
            "conv_0001",
            7,
            direction=Direction.INBOUND,
            cc=("carol@example.com",),
            from_address="bob@example.com",
        )
    )
    sent = SentMessage("msg_0001", "<m1@x>", "a1@mailboxes.example", ("bob@example.com",), "Hi")
    payloads: list[EventPayload] = [
        EmailQueued("psn_1", "bob@example.com", SendClass.WARM, T0 + 5, A1),
        EmailSent("psn_1", sent, A1),
        EmailCancelled("psn_2", "bob@example.com", CancelReason.DO_NOT_CONTACT),
        EmailSendFailedPermanently("psn_3", "bob@example.com", "550 no such user", 6),
        EmailReceived(body),
        EmailReplied(replace(body, text="", html="<p>only html</p>")),
        EmailBounced("bob@example.com", BounceKind.HARD, "5.1.1", "user unknown"),
        EmailNoReply(3_600_000),
        MailboxReplaced(A1, 2, MailboxRef("acc_a2", "a2@mailboxes.example")),
        MailboxReplaced(A1, 0, None),
    ]
    assert {p.TYPE for p in payloads} == set(PAYLOAD_TYPES)
    return payloads


async def test_appended_events_get_the_next_seqs_of_their_identity(
    store: Store, world: World
) -> None:
    alice = world.identity
    first = await append(store, alice, no_reply(1), no_reply(2), at=T0)
    second = await append(store, alice, no_reply(3), at=T0 + 7)
    assert [e.seq for e in first + second] == [1, 2, 3]
    for event, n, at in zip(first + second, (1, 2, 3), (T0, T0, T0 + 7), strict=True):
        assert event.identity_id == alice.id
        assert event.handle == alice.handle
        assert event.conv_id == f"conv_{n:04x}"
        assert event.created_at == at
        assert event.payload == EmailNoReply(n)
        assert event.id.startswith("evt_")
    assert len({e.id for e in first + second}) == 3
    assert await read_log(store, alice) == first + second
    async with store.read() as tx:
        assert await tx.head_seqs([alice.id]) == {alice.id: 3}


async def test_each_identity_counts_its_own_seqs(store: Store, world: World) -> None:
    bob = identity(world.org.id, "bob@mailpool.test")
    async with store.write() as tx:
        await tx.add_identity(bob)
        await tx.append_events(world.identity, [no_reply(1), no_reply(2)], T0)
        await tx.append_events(bob, [no_reply(3)], T0)
        await tx.append_events(world.identity, [no_reply(4)], T0)
    assert [e.seq for e in await read_log(store, world.identity)] == [1, 2, 3]
    assert [e.payload for e in await read_log(store, bob)] == [EmailNoReply(3)]
    async with store.read() as tx:
        heads = await tx.head_seqs([world.identity.id, bob.id, "idn_missing"])
        assert await tx.head_seqs([]) == {}
    assert heads == {world.identity.id: 3, bob.id: 1}


async def test_the_stored_counter_wins_over_the_callers_copy(store: Store, world: World) -> None:
    await append(store, world.identity, no_reply(1))
    stale = replace(world.identity, last_seq=0)  # read before that append
    assert [e.seq for e in await append(store, stale, no_reply(2))] == [2]


async def test_nothing_to_append_is_no_change(store: Store, world: World) -> None:
    assert await append(store, world.identity) == []
    async with store.read() as tx:
        assert await tx.head_seqs([world.identity.id]) == {world.identity.id: 0}


async def test_a_rolled_back_append_gives_its_seqs_back(store: Store, world: World) -> None:
    await append(store, world.identity, no_reply(1))
    await abandoned_write(
        store, lambda tx: tx.append_events(world.identity, [no_reply(2), no_reply(3)], T0)
    )
    async with store.read() as tx:
        assert await tx.head_seqs([world.identity.id]) == {world.identity.id: 1}
    assert [e.seq for e in await append(store, world.identity, no_reply(4))] == [2]
    assert [e.payload for e in await read_log(store, world.identity)] == [
        EmailNoReply(1),
        EmailNoReply(4),
    ]


async def test_concurrent_appends_never_share_or_skip_a_seq(store: Store, world: World) -> None:
    """Writers of one identity take turns on its counter (the row lock on PostgreSQL):
    each gets a consecutive block and together they fill 1..N."""

    async def writer(n: int) -> list[int]:
        async with store.write() as tx:
            identity = await tx.lock_identity(world.identity.id)
            events = await tx.append_events(identity, [no_reply(n), no_reply(n)], T0)
        return [e.seq for e in events]

    blocks = await asyncio.gather(*(writer(n) for n in range(6)))
    assert all(block[1] == block[0] + 1 for block in blocks)
    assert sorted(seq for block in blocks for seq in block) == list(range(1, 13))


async def test_reads_filter_by_since_type_and_limit(store: Store, world: World) -> None:
    alice = world.identity
    payloads = every_payload()
    appended = await append(store, alice, *(NewEvent(None, p) for p in payloads))
    assert await read_log(store, alice, since=0) == appended
    assert await read_log(store, alice, since=3, limit=2) == appended[3:5]
    assert await read_log(store, alice, since=len(payloads)) == []
    assert await read_log(store, alice, since=99) == []
    replaced = await read_log(store, alice, types=(EventType.MAILBOX_REPLACED,))
    assert [e.seq for e in replaced] == [9, 10]
    mixed = await read_log(
        store, alice, since=1, types=(EventType.EMAIL_QUEUED, EventType.EMAIL_SENT, "x.unknown")
    )
    assert [e.seq for e in mixed] == [2]
    assert await read_log(store, alice, limit=0) == []


async def test_every_payload_type_reads_back_equal(store: Store, world: World) -> None:
    payloads = every_payload()
    await append(
        store, world.identity, *(NewEvent(f"conv_{n:04x}", p) for n, p in enumerate(payloads))
    )
    assert [e.payload for e in await read_log(store, world.identity)] == payloads


async def test_events_read_for_an_identity_carry_its_handle(store: Store, world: World) -> None:
    """The handle comes from the identity the caller reads for (the log stores none)."""
    await append(store, world.identity, no_reply(1))
    renamed = replace(world.identity, handle="renamed@mailpool.test")
    [event] = await read_log(store, renamed)
    assert event.handle == "renamed@mailpool.test"
