"""What a send writes per queued recipient and per send, each in one call (one
statement on PostgreSQL): the same rows as the single-row methods write."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailpool_server.service.events import EmailNoReply, NewEvent
from mailpool_server.service.models import (
    Contact,
    Delivery,
    PendingStatus,
    TimelineEntry,
    TimelineType,
)
from mailpool_server.service.ports import (
    IdempotencyRecord,
    MailboxCount,
    Outbound,
    SendTally,
    Store,
)
from tests.store.contract.seed import (
    DAY,
    REFUSED,
    T0,
    World,
    conversation,
    message,
    pending,
)
from tests.store.contract.test_sends import result


def outbound(world: World, n: int, *, new: bool = True, labels: tuple[str, ...] = ()) -> Outbound:
    conv = conversation(world.identity.id, world.a1.id, "bob@example.com", 1, labels=labels)
    msg = message(conv.id, n)
    timeline = (
        TimelineEntry(TimelineType.MESSAGE, T0, msg),
        *(TimelineEntry(TimelineType.LABEL_ADDED, T0, label=label) for label in labels),
    )
    contact = Contact(world.identity.id, "bob@example.com", world.a1.id, n, n, None)
    send = pending(msg, world.identity.id, world.a1.id, n)
    return Outbound(conv, new, msg, timeline, send, contact)


async def test_an_outbound_writes_its_conversation_message_timeline_send_and_contact(
    store: Store, world: World
) -> None:
    first = outbound(world, 1, labels=("lead", "q3"))
    async with store.write() as tx:
        await tx.add_outbound(first)
    second = outbound(world, 2, new=False)
    second = replace(
        second,
        conversation=replace(second.conversation, message_count=2, labels=("lead", "q3")),
    )
    async with store.write() as tx:
        await tx.add_outbound(second)

    async with store.read() as tx:
        conv_id = first.conversation.id
        assert await tx.conversation_by_id(conv_id) == second.conversation
        # Each message's item reports its send, as it stands.
        queued = [Delivery(first.pending.id, PendingStatus.QUEUED)]
        queued += [Delivery(second.pending.id, PendingStatus.QUEUED)]
        expected = [
            replace(entry, delivery=queued[0] if entry.message else None)
            for entry in first.timeline
        ] + [replace(entry, delivery=queued[1]) for entry in second.timeline]
        assert await tx.timeline_of(conv_id) == expected
        assert await tx.message_by_header(world.identity.id, "<m2@mailboxes.example>") == (
            second.message
        )
        assert (await tx.pending_ref(second.pending.id)) is not None
        assert await tx.contacts_among(world.identity.id, ["bob@example.com"]) == {
            "bob@example.com": second.contact
        }


async def test_an_outbound_is_refused_whole(store: Store, world: World) -> None:
    broken = outbound(world, 1)
    broken = replace(broken, pending=replace(broken.pending, mailbox_id="acc_missing"))
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.add_outbound(broken)
    async with store.read() as tx:
        assert await tx.conversation_by_id(broken.conversation.id) is None


def tally(
    world: World,
    count: int,
    cap: int,
    shares: list[MailboxCount],
    *,
    events: int = 1,
    key: str | None = None,
    first_event: int = 1,
    outbounds: tuple[Outbound, ...] = (),
) -> SendTally:
    """A send's writes once placed: `events` small events numbered from `first_event`."""
    return SendTally(
        outbounds=list(outbounds),
        identity=world.identity,
        day=DAY,
        count=count,
        cap=cap,
        mailboxes=shares,
        events=[
            NewEvent(f"conv_{n:04x}", EmailNoReply(n))
            for n in range(first_event, first_event + events)
        ],
        at=T0,
        key=key,
        result=result(),
    )


async def test_finishing_a_send_counts_it_appends_its_events_and_stores_its_result(
    store: Store, world: World
) -> None:
    a1, a2, org_id = world.a1.id, world.a2.id, world.org.id
    # Two recipients' rows in one send (the second continues the first's conversation),
    # then one in the next.
    first, second = outbound(world, 1), outbound(world, 2, new=False)
    second = replace(second, conversation=replace(second.conversation, message_count=2))
    third = outbound(world, 3, new=False)
    third = replace(third, conversation=replace(third.conversation, message_count=3))
    async with store.write() as tx:
        assert await tx.claim_idempotency_key(org_id, "k1", "f1", T0, T0 + 1000) is None
        shares = [MailboxCount(a1, 2, 5, T0 + 60_000), MailboxCount(a2, 1, 5, None)]
        two = (first, second)
        assert (
            await tx.finish_send(tally(world, 3, 10, shares, events=2, key="k1", outbounds=two))
            == 2
        )
        one = [MailboxCount(a1, 1, 5, None)]
        assert (
            await tx.finish_send(tally(world, 1, 10, one, first_event=3, outbounds=(third,))) == 3
        )
    async with store.read() as tx:
        assert await tx.identity_used([world.identity.id], DAY) == {world.identity.id: 4}
        assert await tx.mailboxes_sent([a1, a2], DAY) == {a1: 3, a2: 1}
        by_id = {m.id: m for m in await tx.mailboxes_of([world.identity.id])}
        assert by_id[a1].cold_next_at == T0 + 60_000
        assert by_id[a2].cold_next_at == world.a2.cold_next_at
        log = await tx.events_after(world.identity, 0, (), 10)
        stored = await tx.idempotency_record(org_id, "k1", T0)
        conversation = await tx.conversation_by_id(first.conversation.id)
        messages = [e.message for e in await tx.timeline_of(first.conversation.id)]
        queued = [await tx.pending_ref(o.pending.id) for o in (first, second, third)]
        contacts = await tx.contacts_among(world.identity.id, ["bob@example.com"])
    assert conversation == third.conversation
    assert messages == [first.message, second.message, third.message]
    assert None not in queued
    assert contacts == {"bob@example.com": third.contact}
    assert [(e.seq, e.conv_id, e.payload) for e in log] == [
        (n, f"conv_{n:04x}", EmailNoReply(n)) for n in (1, 2, 3)
    ]
    assert stored == IdempotencyRecord("f1", result(), T0 + 1000)


@pytest.mark.parametrize(
    ("count", "cap", "share"),
    [
        # With one counted already, each is one past a cap the stored count reaches.
        (2, 2, MailboxCount("a1", 2, 5, None)),  # the identity's
        (2, 10, MailboxCount("a1", 2, 2, None)),  # the mailbox's
        # Past a cap by itself, whatever is stored.
        (3, 2, MailboxCount("a1", 1, 5, None)),
        (1, 10, MailboxCount("a1", 3, 2, None)),
    ],
)
async def test_finishing_past_a_cap_is_refused(
    store: Store, world: World, count: int, cap: int, share: MailboxCount
) -> None:
    share = replace(share, mailbox_id=world.a1.id)
    async with store.write() as tx:
        assert await tx.finish_send(tally(world, 1, 10, [replace(share, count=1)])) == 1
        assert await tx.finish_send(tally(world, count, cap, [share], first_event=2)) is None
