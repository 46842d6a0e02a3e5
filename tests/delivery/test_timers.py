"""No-reply timers and the daily close (warmup, health), driven by the injected clock."""

from __future__ import annotations

import grpc
from sqlalchemy import update

from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock
from mailpool_server.store.tables import MailboxRow
from tests.delivery.helpers import deliver_all, events_of
from tests.sending import send
from tests.support import Tenant, make_tenant


async def test_no_reply_fires_once_when_due(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    conv = (await send(channel, tenant, to="bob@example.com", no_reply_event_after="4h")).results[0]
    clock.advance(hours=3, minutes=59)
    assert await app.timers.fire_no_reply() == 0
    clock.advance(minutes=2)
    assert await app.timers.fire_no_reply() == 1
    assert await app.timers.fire_no_reply() == 0
    kind, data = (await events_of(app, tenant.handle))[-1]
    assert (kind, data) == ("email.no_reply", {"waitedMs": 4 * 3_600_000 + 60_000})
    async with app.store.read() as tx:
        timeline = await tx.timeline_of(conv.conv_id)
        conversation = await tx.conversation_by_id(conv.conv_id)
    assert timeline[-1].type == "no_reply_expired"
    assert conversation is not None
    assert conversation.no_reply_at is None
    assert conversation.last_no_reply_at is not None


async def test_timers_survive_a_restart(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    await send(channel, tenant, to="bob@example.com", no_reply_event_after="30m")
    await app.stop()
    restarted = await App.open(app.settings, clock)
    try:
        clock.advance(minutes=31)
        assert await restarted.timers.fire_no_reply() == 1
    finally:
        await restarted.stop()


async def test_three_sending_days_move_a_mailbox_up_a_stage(
    app: App, channel: grpc.aio.Channel, clock: FakeClock
) -> None:
    tenant = await make_tenant(app, "warm", "w@mailpool.local", warmup_stage=0)
    stages = []
    for day in range(3):
        for n in range(3):
            await send(channel, tenant, to=f"d{day}n{n}@example.com")
        await deliver_all(app)
        clock.advance(days=1)
        await app.timers.close_days()
        stages.append(
            sorted(
                m.mailbox.warmup_stage
                for m in (await app.admin.show_identity(tenant.handle)).mailboxes
            )
        )
    assert stages == [[0, 0, 0], [0, 0, 0], [1, 1, 1]]
    caps = {m.mailbox.daily_cap for m in (await app.admin.show_identity(tenant.handle)).mailboxes}
    assert caps == {10}


async def test_clean_days_recover_health_and_idle_days_change_nothing(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    async with app.store.write() as tx:
        await tx.session.execute(update(MailboxRow).values(health=60))
    await send(channel, tenant, to="bob@example.com")
    await deliver_all(app)
    clock.advance(days=3)  # one sending day, then two idle ones, closed in one go
    await app.timers.close_days()
    healths = sorted(
        m.mailbox.health for m in (await app.admin.show_identity(tenant.handle)).mailboxes
    )
    assert healths == [60, 60, 61]
    assert await app.timers.close_days() == 0
