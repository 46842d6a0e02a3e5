"""The dispatcher with the maildir transport: real files, real RFC 5322."""

from __future__ import annotations

import grpc

from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, now_ms, utc_day
from mailpool_server.service.ports import MailboxDay
from tests.delivery.helpers import deliver_all, events_of, maildir_messages
from tests.sending import send
from tests.support import Tenant


async def test_a_queued_send_is_delivered_once_as_rfc5322(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    queued = (
        await send(
            channel,
            tenant,
            to="bob@example.com",
            subject="Pricing",
            text="Plain words",
            html="<p>Rich words</p>",
        )
    ).results[0]
    assert await deliver_all(app) == 1
    assert await deliver_all(app) == 0
    [mail] = maildir_messages(app)
    assert mail["From"] == queued.account.email
    assert mail["To"] == "bob@example.com"
    assert mail["Subject"] == "Pricing"
    assert mail["Message-ID"].endswith("@mailboxes.mailpool.local>")
    assert mail["Date"] is not None
    assert mail.get_content_type() == "multipart/alternative"
    assert mail.get_body(("plain",)).get_content().strip() == "Plain words"  # type: ignore[union-attr]
    assert mail.get_body(("html",)).get_content().strip() == "<p>Rich words</p>"  # type: ignore[union-attr]
    events = await events_of(app, tenant.handle)
    assert [t for t, _ in events] == ["email.queued", "email.sent"]
    sent = events[1][1]
    assert sent["pendingId"] == queued.pending_id
    assert sent["message"]["messageIdHeader"] == mail["Message-ID"]
    async with app.store.read() as tx:
        assert await tx.pending_status(queued.pending_id) == "sent"
        days = await tx.mailbox_days(queued.account.id, None, "9999-12-31")
    assert days == [MailboxDay(utc_day(now_ms(clock)), 1, 0)]


async def test_replies_carry_threading_headers(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    first = (await send(channel, tenant, to="bob@example.com", subject="Pricing")).results[0]
    await send(channel, tenant, conv_id=first.conv_id, text="Following up")
    await deliver_all(app)
    clock.advance(minutes=1)  # the reply is a cold follow-up: paced on its mailbox
    await deliver_all(app)
    original, reply = sorted(maildir_messages(app), key=lambda m: str(m["Subject"]))
    assert reply["Subject"] == "Re: Pricing"
    assert reply["In-Reply-To"] == original["Message-ID"]
    assert reply["References"] == original["Message-ID"]
    assert reply["From"] == original["From"]


async def test_cold_sends_wait_for_their_slot(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    for n in range(4):  # 3 mailboxes: the 4th cold send shares a mailbox, a gap later
        await send(channel, tenant, to=f"c{n}@example.com")
    assert await deliver_all(app) == 3
    clock.advance(seconds=59)
    assert await deliver_all(app) == 0
    clock.advance(seconds=1)
    assert await deliver_all(app) == 1


async def test_working_hours_hold_cold_sends_until_the_window_opens(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    # 08:00 UTC is 04:00 in New York (EDT, UTC-4): the window opens at 09:00 local.
    await app.admin.set_working_hours(tenant.handle, "America/New_York", "09:00", "17:00")
    result = (await send(channel, tenant, to="early@example.com")).results[0]
    opens = now_ms(clock) + 5 * 3_600_000
    assert result.dispatch_time.ToMilliseconds() == opens
    assert await deliver_all(app) == 0
    clock.advance(hours=5)
    assert await deliver_all(app) == 1
