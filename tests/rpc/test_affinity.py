"""The picker through Send: affinity pins, reassignment, classification."""

from __future__ import annotations

import grpc
from sqlalchemy import update

from mailpool.v1 import send_pb2
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, now_ms, utc_day
from mailpool_server.store.tables import ContactRow, MailboxRow
from tests.sending import send
from tests.support import Tenant


async def test_recipient_stays_on_its_mailbox(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    first = (await send(channel, tenant, to="bob@example.com")).results[0]
    for n in range(5):  # other traffic moves the weights around
        await send(channel, tenant, to=f"other{n}@example.com")
    again = (await send(channel, tenant, to="BOB@example.com")).results[0]
    assert first.affinity == send_pb2.AFFINITY_NEW
    assert again.affinity == send_pb2.AFFINITY_EXISTING
    assert again.account.id == first.account.id
    assert again.send_class == send_pb2.SEND_CLASS_COLD_FOLLOWUP


async def test_new_recipients_spread_over_mailboxes(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    accounts = [
        (await send(channel, tenant, to=f"lead{n}@example.com")).results[0].account.id
        for n in range(6)
    ]
    assert len(set(accounts)) == 3
    assert all(accounts.count(a) == 2 for a in set(accounts))


async def test_capped_pinned_mailbox_is_reassigned(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    pinned = (await send(channel, tenant, to="bob@example.com")).results[0].account.id
    async with app.store.write() as tx:  # the pinned mailbox uses up its day
        assert await tx.add_mailbox_usage(pinned, utc_day(now_ms(clock)), 49, 50)
    moved = (await send(channel, tenant, to="bob@example.com")).results[0]
    assert moved.affinity == send_pb2.AFFINITY_REASSIGNED
    assert moved.account.id != pinned
    stays = (await send(channel, tenant, to="bob@example.com")).results[0]
    assert (stays.affinity, stays.account.id) == (send_pb2.AFFINITY_EXISTING, moved.account.id)


async def test_unhealthy_pinned_mailbox_is_reassigned(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    pinned = (await send(channel, tenant, to="bob@example.com")).results[0].account.id
    async with app.store.write() as tx:
        await tx.session.execute(
            update(MailboxRow).where(MailboxRow.id == pinned).values(health=19)
        )
    moved = (await send(channel, tenant, to="bob@example.com")).results[0]
    assert moved.affinity == send_pb2.AFFINITY_REASSIGNED
    assert moved.account.id != pinned
    # Health 20 is not below the threshold: the mailbox is pickable again.
    async with app.store.write() as tx:
        await tx.session.execute(
            update(MailboxRow).where(MailboxRow.id == pinned).values(health=20)
        )
    accounts = {
        (await send(channel, tenant, to=f"lead{n}@example.com")).results[0].account.id
        for n in range(6)
    }
    assert pinned in accounts


async def test_a_reply_makes_the_recipient_warm_for_three_outbounds(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    await send(channel, tenant, to="bob@example.com")
    async with app.store.write() as tx:  # what the inbound listener records on a reply
        await tx.session.execute(
            update(ContactRow).values(last_reply_at=now_ms(clock), outbounds_since_reply=0)
        )
    classes = [
        (await send(channel, tenant, to="bob@example.com")).results[0].send_class for _ in range(4)
    ]
    warm, followup = send_pb2.SEND_CLASS_WARM, send_pb2.SEND_CLASS_COLD_FOLLOWUP
    assert classes == [warm, warm, warm, followup]


async def test_cold_sends_are_paced_per_mailbox_and_warm_are_not(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    now = now_ms(clock)
    times = [(await send(channel, tenant, to=f"c{n}@example.com")).results[0] for n in range(6)]
    by_mailbox: dict[str, list[int]] = {}
    for result in times:
        by_mailbox.setdefault(result.account.id, []).append(result.dispatch_time.ToMilliseconds())
    assert sorted(by_mailbox.values()) == [[now, now + 60_000]] * 3
