"""Queued sends on their way out: claims and leases, outcomes, mailbox health and days,
re-pinning, cancellation, and the clock-driven reads (no-reply timers, day closing)."""

from __future__ import annotations

from dataclasses import replace

from mailpool_server.service.models import (
    Contact,
    Delivery,
    PendingSend,
    PendingStatus,
    SendClass,
    TimelineEntry,
    TimelineType,
)
from mailpool_server.service.outbound import OutgoingMessage
from mailpool_server.service.ports import CancelledSend, MailboxDay, PendingRef, Store
from tests.store.contract.seed import (
    DAY,
    T0,
    World,
    add_thread,
    conversation,
    identity,
    mailbox,
    queue_send,
)

LEASE = 120_000


async def claim_due(store: Store, now: int, limit: int = 100) -> list[OutgoingMessage]:
    async with store.write() as tx:
        return await tx.claim_due(now, now + LEASE, limit)


async def status(store: Store, send: PendingSend) -> PendingStatus | None:
    async with store.read() as tx:
        return await tx.pending_status(send.id)


def claimed(messages: list[OutgoingMessage]) -> list[tuple[str, int]]:
    return [(m.pending_id, m.attempt) for m in messages]


# -- claims and leases ---------------------------------------------------------------


async def test_a_claim_takes_due_sends_in_dispatch_order(store: Store, world: World) -> None:
    later = await queue_send(store, world, 1, dispatch_at=T0 + 10)
    first = await queue_send(store, world, 2, dispatch_at=T0 - 5, to="carol@example.com")
    tied = await queue_send(store, world, 3, dispatch_at=T0 - 5, to="dan@example.com")
    await queue_send(store, world, 4, dispatch_at=T0 + 11)
    assert claimed(await claim_due(store, T0 + 10, limit=2)) == [(first.id, 1), (tied.id, 1)]
    assert claimed(await claim_due(store, T0 + 10)) == [(later.id, 1)]  # dispatch_at <= now
    assert await claim_due(store, T0 + 10) == []
    assert await status(store, later) is PendingStatus.SENDING


async def test_a_claim_carries_everything_a_transport_needs(store: Store, world: World) -> None:
    thread = await add_thread(store, world, 1, mailbox_id=world.a2.id)
    reply = replace(
        thread.message,
        id="msg_0002",
        message_id_header="<m2@mailboxes.example>",
        subject="Re: subject 1",
        in_reply_to="<m1@mailboxes.example>",
        references=("<m0@elsewhere>", "<m1@mailboxes.example>"),
    )
    send = PendingSend(
        id="psn_0002",
        identity_id=world.identity.id,
        conv_id=thread.conversation.id,
        message_id=reply.id,
        mailbox_id=world.a2.id,
        recipient="bob@example.com",
        send_class=SendClass.WARM,
        status=PendingStatus.QUEUED,
        dispatch_at=T0,
        created_at=T0,
    )
    async with store.write() as tx:
        await tx.add_message(reply)
        await tx.add_pending_send(send)
        await tx.set_mailbox_cold_next(world.a2.id, T0 + 1)  # the mailbox as it is now
    [outgoing] = await claim_due(store, T0)
    assert outgoing == OutgoingMessage(
        pending_id=send.id,
        identity_id=world.identity.id,
        handle=world.identity.handle,
        conv_id=thread.conversation.id,
        message_id=reply.id,
        mailbox=replace(world.a2, cold_next_at=T0 + 1),
        recipient="bob@example.com",
        subject="Re: subject 1",
        text=reply.text,
        html=reply.html,
        message_id_header="<m2@mailboxes.example>",
        in_reply_to="<m1@mailboxes.example>",
        references=("<m0@elsewhere>", "<m1@mailboxes.example>"),
        attempt=1,
    )


async def test_a_lease_holds_until_it_has_run_out(store: Store, world: World) -> None:
    send = await queue_send(store, world, 1)
    assert claimed(await claim_due(store, T0)) == [(send.id, 1)]
    assert await claim_due(store, T0 + LEASE) == []  # lease_until < now: not yet
    # The dispatcher died: the next claim takes the row over as a new attempt.
    assert claimed(await claim_due(store, T0 + LEASE + 1)) == [(send.id, 2)]


async def test_only_the_current_claim_records_an_outcome(store: Store, world: World) -> None:
    send = await queue_send(store, world, 1)
    await claim_due(store, T0)
    await claim_due(store, T0 + LEASE + 1)  # attempt 2 took over
    async with store.write() as tx:
        assert not await tx.finish_sent(send.id, 1, T0 + LEASE + 2)
        assert not await tx.finish_failed(send.id, 1, "late")
        assert not await tx.retry_later(send.id, 1, T0 + LEASE + 3, "late")
        assert await tx.finish_sent(send.id, 2, T0 + LEASE + 4)
    async with store.write() as tx:  # done is done
        assert not await tx.finish_sent(send.id, 2, T0 + LEASE + 5)
        assert not await tx.finish_failed(send.id, 2, "after")
    assert await status(store, send) is PendingStatus.SENT
    assert await claim_due(store, T0 + 10 * LEASE) == []


async def test_a_claim_past_its_lease_still_records_until_taken_over(
    store: Store, world: World
) -> None:
    send = await queue_send(store, world, 1)
    await claim_due(store, T0)
    async with store.write() as tx:
        assert await tx.finish_sent(send.id, 1, T0 + 10 * LEASE)
    assert await status(store, send) is PendingStatus.SENT


async def test_outcomes_need_a_claim(store: Store, world: World) -> None:
    send = await queue_send(store, world, 1)
    async with store.write() as tx:
        assert not await tx.finish_sent(send.id, 0, T0)
        assert not await tx.finish_sent(send.id, 1, T0)
        assert not await tx.finish_failed("psn_missing", 1, "x")
    assert await status(store, send) is PendingStatus.QUEUED


async def test_a_failure_is_final(store: Store, world: World) -> None:
    send = await queue_send(store, world, 1)
    await claim_due(store, T0)
    async with store.write() as tx:
        assert await tx.finish_failed(send.id, 1, "550 " + "x" * 5000)  # stored cut short
    assert await status(store, send) is PendingStatus.FAILED
    assert await claim_due(store, T0 + 10 * LEASE) == []


async def test_a_retry_goes_back_to_the_queue_until_its_time(store: Store, world: World) -> None:
    send = await queue_send(store, world, 1)
    await claim_due(store, T0)
    async with store.write() as tx:
        assert await tx.retry_later(send.id, 1, T0 + 30_000, "421 try later")
    assert await status(store, send) is PendingStatus.QUEUED
    assert await claim_due(store, T0 + 29_999) == []
    assert claimed(await claim_due(store, T0 + 30_000)) == [(send.id, 2)]


# -- mailbox health and days -----------------------------------------------------------


async def test_deliveries_and_hits_are_counted_per_day(store: Store, world: World) -> None:
    a1 = world.a1.id
    async with store.write() as tx:
        await tx.count_delivery(a1, "2026-04-25")
        await tx.count_delivery(a1, "2026-04-27")
        await tx.count_delivery(a1, "2026-04-27")
        assert await tx.lock_mailbox_health(a1) == 100
        await tx.record_health_hit(a1, 85, "2026-04-27")
        await tx.record_health_hit(a1, 75, "2026-04-26")
        await tx.count_delivery(world.a2.id, "2026-04-26")
        assert await tx.lock_mailbox_health(a1) == 75
        # Deliveries do not count against the cap counter.
        assert await tx.add_mailbox_usage(a1, "2026-04-27", 5, 5)
    async with store.read() as tx:
        days = tx.mailbox_days
        assert await days(a1, None, "9999-12-31") == [
            MailboxDay("2026-04-25", 1, 0),
            MailboxDay("2026-04-26", 0, 1),
            MailboxDay("2026-04-27", 2, 1),
        ]
        # Strictly after `after`, strictly before `before`.
        assert await days(a1, "2026-04-25", "2026-04-27") == [MailboxDay("2026-04-26", 0, 1)]
        assert await days(a1, "2026-04-27", "2026-04-28") == []
        assert await days("acc_missing", None, "9999-12-31") == []
        assert (await tx.mailbox_by_email(world.a1.email)) == replace(world.a1, health=75)


async def test_set_warmup_stores_the_day_closing(store: Store, world: World) -> None:
    async with store.write() as tx:
        await tx.set_warmup(world.a1.id, 3, 2, 64, "2026-04-26")
    async with store.read() as tx:
        assert await tx.mailbox_by_email(world.a1.email) == replace(
            world.a1, warmup_stage=3, qualifying_days=2, health=64, closed_through="2026-04-26"
        )


async def test_mailboxes_with_an_unclosed_finished_day_are_listed(
    store: Store, world: World
) -> None:
    async with store.write() as tx:
        await tx.add_mailbox(mailbox(world.identity.id, "a3@mailboxes.example"))
        await tx.set_warmup(world.a1.id, 5, 0, 100, "2026-04-26")  # closed through yesterday
        await tx.set_warmup(world.a2.id, 5, 0, 100, "2026-04-25")  # one day behind
    async with store.read() as tx:
        to_close = await tx.mailboxes_to_close(DAY)
        # No order is promised.
        assert {m.email for m in to_close} == {"a2@mailboxes.example", "a3@mailboxes.example"}
        assert {m.email for m in await tx.mailboxes_to_close("2026-04-26")} == {
            "a3@mailboxes.example"
        }


# -- dead mailboxes: re-pinning and cancelling ------------------------------------------


async def test_pins_move_with_their_conversations_and_queued_sends(
    store: Store, world: World
) -> None:
    alice, a1, a2 = world.identity.id, world.a1.id, world.a2.id
    bob_queued = await queue_send(store, world, 1, to="bob@example.com")
    bob_sending = await queue_send(store, world, 2, to="bob@example.com", dispatch_at=T0 - 1)
    carol_queued = await queue_send(store, world, 3, to="carol@example.com", dispatch_at=T0 + 1)
    async with store.write() as tx:
        await tx.save_contact(Contact(alice, "bob@example.com", a1))
        await tx.save_contact(Contact(alice, "carol@example.com", a1))
        await tx.save_contact(Contact(alice, "dan@example.com", a2))
        await tx.claim_due(T0 - 1, T0 + LEASE, 1)  # bob's second send is on its way
    async with store.read() as tx:
        assert await tx.contacts_pinned_to(a1) == ["bob@example.com", "carol@example.com"]
        assert await tx.contacts_pinned_to("acc_missing") == []
    async with store.write() as tx:
        await tx.move_pins(a1, {"bob@example.com": a2})
    async with store.read() as tx:
        assert await tx.contacts_pinned_to(a1) == ["carol@example.com"]
        assert await tx.contacts_pinned_to(a2) == ["bob@example.com", "dan@example.com"]
        moved = await tx.conversation_by_id(bob_queued.conv_id)
        kept = await tx.conversation_by_id(carol_queued.conv_id)
        assert moved is not None and moved.mailbox_id == a2
        assert kept is not None and kept.mailbox_id == a1
    # Queued sends follow the pin; the one already claimed stays where it was sent from.
    outgoing = {m.pending_id: m.mailbox.id for m in await claim_due(store, T0 + 10 * LEASE)}
    assert outgoing == {bob_queued.id: a2, bob_sending.id: a1, carol_queued.id: a1}


async def test_cancelling_queued_sends_by_mailbox_identities_or_recipient(
    store: Store, world: World
) -> None:
    bob = identity(world.org.id, "bob@mailpool.test")
    b1 = mailbox(bob.id, "b1@mailboxes.example")
    async with store.write() as tx:
        await tx.add_identity(bob)
        await tx.add_mailbox(b1)
        await tx.add_conversation(conversation(bob.id, b1.id, "zed@example.com", 90))
    s1 = await queue_send(store, world, 1, to="zed@example.com")
    s2 = await queue_send(store, world, 2, to="yan@example.com", mailbox_id=world.a2.id)
    s3 = await queue_send(store, world, 3, to="zed@example.com", mailbox_id=world.a2.id)
    on_its_way = await queue_send(store, world, 4, to="zed@example.com", dispatch_at=T0 - 1)
    await claim_due(store, T0 - 1)

    def cancelled(*sends: PendingSend) -> list[CancelledSend]:
        return [CancelledSend(s.id, s.identity_id, s.conv_id, s.recipient) for s in sends]

    async with store.write() as tx:
        assert await tx.cancel_queued(identity_ids=[]) == []
        assert await tx.cancel_queued(identity_ids=[bob.id]) == []
        assert await tx.cancel_queued(mailbox_id=world.a2.id, recipient="zed@example.com") == (
            cancelled(s3)
        )
        assert await tx.cancel_queued(
            identity_ids=[bob.id, world.identity.id], recipient="zed@example.com"
        ) == cancelled(s1)
        assert await tx.cancel_queued(mailbox_id=world.a2.id) == cancelled(s2)
        assert await tx.cancel_queued() == []  # all that was queued is gone
    for send in (s1, s2, s3):
        assert await status(store, send) is PendingStatus.CANCELLED
    assert await status(store, on_its_way) is PendingStatus.SENDING
    assert await claim_due(store, T0 + 1) == []


async def test_cancelled_sends_come_in_id_order(store: Store, world: World) -> None:
    sends = [await queue_send(store, world, n, to=f"c{n}@example.com") for n in (3, 1, 2)]
    async with store.write() as tx:
        dropped = await tx.cancel_queued(mailbox_id=world.a1.id)
    assert [c.pending_id for c in dropped] == sorted(s.id for s in sends)


# -- no-reply timers ------------------------------------------------------------------


async def test_due_no_reply_timers_come_oldest_first(store: Store, world: World) -> None:
    async with store.write() as tx:
        for n, at in ((1, T0 + 5), (2, T0), (3, None), (4, T0 + 6), (5, T0)):
            await tx.add_conversation(
                conversation(
                    world.identity.id,
                    world.a1.id,
                    f"c{n}@example.com",
                    n,
                    no_reply_after_ms=60_000 if at else None,
                    no_reply_at=at,
                )
            )
    async with store.write() as tx:
        for lock in (False, True):
            due = await tx.due_no_reply(T0 + 5, 10, lock=lock)
            assert [c.id for c in due] == ["conv_0002", "conv_0005", "conv_0001"]
            assert [c.id for c in await tx.due_no_reply(T0 + 5, 2, lock=lock)] == [
                "conv_0002",
                "conv_0005",
            ]
            assert await tx.due_no_reply(T0 - 1, 10, lock=lock) == []


async def test_one_send_is_cancelled_by_id_and_its_owner_is_known(
    store: Store, world: World
) -> None:
    s1 = await queue_send(store, world, 1)
    s2 = await queue_send(store, world, 2, to="carol@example.com")
    async with store.read() as tx:
        assert await tx.pending_ref("psn_missing") is None
        assert await tx.pending_ref(s1.id) == PendingRef(
            s1.id, world.identity.id, s1.conv_id, s1.recipient, PendingStatus.QUEUED
        )
    async with store.write() as tx:
        assert await tx.cancel_queued(pending_id=s1.id) == [
            CancelledSend(s1.id, s1.identity_id, s1.conv_id, s1.recipient)
        ]
        assert await tx.cancel_queued(pending_id=s1.id) == []
    async with store.read() as tx:
        ref = await tx.pending_ref(s1.id)
        assert ref is not None and ref.status is PendingStatus.CANCELLED
    assert await status(store, s2) is PendingStatus.QUEUED


async def test_the_timeline_reports_each_message_send_as_it_stands(
    store: Store, world: World
) -> None:
    first = await queue_send(store, world, 1)
    second = await queue_send(store, world, 2, to="carol@example.com")
    async with store.write() as tx:
        for send in (first, second):
            message = await tx.message_by_header(
                world.identity.id, f"<m{send.id[-1]}@mailboxes.example>"
            )
            assert message is not None
            await tx.add_timeline(send.conv_id, TimelineEntry(TimelineType.MESSAGE, T0, message))
    await claim_due(store, T0)  # both taken by a dispatcher
    async with store.write() as tx:
        assert await tx.finish_sent(first.id, 1, T0 + 1)

    async with store.read() as tx:
        [sent] = await tx.timeline_of(first.conv_id)
        [sending] = await tx.timeline_of(second.conv_id)
    assert sent.delivery == Delivery(first.id, PendingStatus.SENT)
    assert sending.delivery == Delivery(second.id, PendingStatus.SENDING)
