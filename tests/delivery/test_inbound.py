"""The inbound listener fed real messages over SMTP and LMTP."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

import aiosmtplib
import grpc
import pytest
from sqlalchemy import update

from mailpool.v1 import send_pb2
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.delivery.inbound import parse
from mailpool_server.service.clock import FakeClock
from mailpool_server.store.tables import MailboxRow
from tests.delivery.helpers import deliver_all, events_of, maildir_messages
from tests.sending import rejected, send
from tests.support import Tenant


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.inbound_port = 0
    settings.lmtp_port = 0
    return settings


async def outbound_to_bob(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> tuple[str, str, str]:
    """Send to bob and deliver it; (conv id, mailbox address, Message-ID)."""
    result = (
        await send(
            channel, tenant, to="bob@example.com", subject="Pricing", no_reply_event_after="1d"
        )
    ).results[0]
    await deliver_all(app)
    [mail] = maildir_messages(app)
    return result.conv_id, result.account.email, str(mail["Message-ID"])


def reply(to: str, in_reply_to: str, text: str = "Sounds good") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bob <bob@example.com>"
    message["To"] = to
    message["Subject"] = "Re: Pricing"
    message["Message-ID"] = "<reply-1@example.com>"
    message["In-Reply-To"] = in_reply_to
    message["References"] = in_reply_to
    message.set_content(text)
    return message


async def test_a_reply_over_smtp_threads_and_warms_the_recipient(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    conv_id, mailbox, message_id = await outbound_to_bob(app, channel, tenant)
    await aiosmtplib.send(
        reply(mailbox, message_id), hostname="127.0.0.1", port=app.listener_port("smtp")
    )
    events = await events_of(app, tenant.handle)
    assert events[-1][0] == "email.replied"
    replied = events[-1][1]["message"]
    assert replied["from"] == "bob@example.com"
    assert replied["direction"] == "inbound"
    async with app.store.read() as tx:
        conversation = await tx.conversation_by_id(conv_id)
    assert conversation is not None
    assert conversation.message_count == 2
    assert conversation.no_reply_at is None  # the reply cancelled the timer
    again = (await send(channel, tenant, to="bob@example.com")).results[0]
    assert again.send_class == send_pb2.SEND_CLASS_WARM


async def test_new_mail_opens_a_conversation(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    _, mailbox, _ = await outbound_to_bob(app, channel, tenant)
    message = reply(mailbox, "<unknown@elsewhere.example>")
    message.replace_header("From", "carol@example.org")
    await aiosmtplib.send(message, hostname="127.0.0.1", port=app.listener_port("smtp"))
    kind, data = (await events_of(app, tenant.handle))[-1]
    assert kind == "email.received"
    assert data["message"]["from"] == "carol@example.org"


async def test_unknown_recipients_are_refused_at_rcpt(app: App, tenant: Tenant) -> None:
    message = reply("nobody@mailboxes.mailpool.local", "<x@y.example>")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
        await aiosmtplib.send(message, hostname="127.0.0.1", port=app.listener_port("smtp"))
    assert caught.value.recipients[0].code == 550


async def test_lmtp_delivery(app: App, channel: grpc.aio.Channel, tenant: Tenant) -> None:
    _, mailbox, message_id = await outbound_to_bob(app, channel, tenant)
    port = app.listener_port("lmtp")

    def over_lmtp() -> dict[str, tuple[int, bytes]]:
        with smtplib.LMTP("127.0.0.1", port) as client:
            return client.send_message(reply(mailbox, message_id))

    assert await asyncio.to_thread(over_lmtp) == {}
    assert (await events_of(app, tenant.handle))[-1][0] == "email.replied"


def dsn(mailbox: str, recipient: str, status: str, original_id: str) -> bytes:
    """A real RFC 3464 report, byte for byte as an MTA writes one."""
    return f"""From: MAILER-DAEMON@mx.example.com
To: {mailbox}
Subject: Delivery Status Notification (Failure)
Message-ID: <dsn-1@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

Delivery to {recipient} failed permanently.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Mon, 27 Apr 2026 08:00:05 +0000

Final-Recipient: rfc822; {recipient}
Action: failed
Status: {status}
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 {status} user unknown

--b1
Content-Type: text/rfc822-headers

Message-ID: {original_id}
From: {mailbox}
To: {recipient}
Subject: Pricing

--b1--
""".replace("\n", "\r\n").encode()


async def bounce(app: App, mailbox: str, raw: bytes) -> None:
    """Deliver a report the way MTAs do: from the null sender, MAIL FROM:<>."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=app.listener_port("smtp")) as client:
        await client.sendmail("", [mailbox], raw)


async def test_a_hard_bounce_blocks_the_recipient_and_cancels_queued_sends(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    _, mailbox, message_id = await outbound_to_bob(app, channel, tenant)
    queued = (await send(channel, tenant, to="bob@example.com")).results[0]  # paced: still queued
    raw = dsn(mailbox, "bob@example.com", "5.1.1", message_id)
    await bounce(app, mailbox, raw)
    events = await events_of(app, tenant.handle)
    bounced = [d for t, d in events if t == "email.bounced"]
    assert bounced == [
        {
            "recipient": "bob@example.com",
            "kind": "hard",
            "statusCode": "5.1.1",
            "diagnostic": "550 5.1.1 user unknown",
        }
    ]
    cancelled = [d for t, d in events if t == "email.cancelled"]
    assert cancelled == [
        {"pendingId": queued.pending_id, "recipient": "bob@example.com", "reason": "do_not_contact"}
    ]
    body = await rejected(channel, tenant, to="bob@example.com")
    assert body.results[0].reject_reason == send_pb2.REJECT_REASON_DO_NOT_CONTACT
    shown = await app.admin.show_identity(tenant.handle)
    assert [m.mailbox.health for m in shown.mailboxes if m.mailbox.email == mailbox] == [90]
    async with app.store.read() as tx:
        assert await tx.pending_status(queued.pending_id) == "cancelled"


async def test_a_soft_bounce_only_costs_a_little_health(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    _, mailbox, message_id = await outbound_to_bob(app, channel, tenant)
    raw = dsn(mailbox, "bob@example.com", "4.2.2", message_id)
    await bounce(app, mailbox, raw)
    assert (await events_of(app, tenant.handle))[-1][1]["kind"] == "soft"
    assert (await send(channel, tenant, to="bob@example.com")).accepted == 1
    shown = await app.admin.show_identity(tenant.handle)
    assert [m.mailbox.health for m in shown.mailboxes if m.mailbox.email == mailbox] == [98]


async def test_a_mailbox_that_dies_hands_its_recipients_to_healthy_peers(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    conv_id, mailbox, message_id = await outbound_to_bob(app, channel, tenant)
    async with app.store.write() as tx:
        await tx.session.execute(
            update(MailboxRow).where(MailboxRow.email == mailbox).values(health=25)
        )
    raw = dsn(mailbox, "bob@example.com", "5.1.1", message_id)
    await bounce(app, mailbox, raw)
    kind, data = (await events_of(app, tenant.handle))[-1]
    assert kind == "mailbox.replaced"
    assert data["oldAccount"]["email"] == mailbox
    assert data["repinned"] == 1
    assert data["newAccount"] is not None
    async with app.store.read() as tx:
        conversation = await tx.conversation_by_id(conv_id)
    assert conversation is not None
    assert conversation.mailbox_id == data["newAccount"]["id"]


async def test_an_over_long_sender_is_refused_for_good(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    """No address is that long, and the store keys contacts by the sender: refused with
    a 5xx, not a 451 the sending server would retry forever (on every backend)."""
    _, mailbox, message_id = await outbound_to_bob(app, channel, tenant)
    mail = reply(mailbox, message_id)
    del mail["From"]
    mail["From"] = "b" * 400 + "@example.com"
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=app.listener_port("smtp"))
    assert refused.value.code == 550


def test_message_ids_longer_than_a_line_are_left_out() -> None:
    """SMTP servers refuse lines over 1000 characters, but a message handed over by other
    means (LMTP from a lenient MTA) may carry one: such an ID threads onto nothing."""
    long_id = "<" + "x" * 1200 + "@example.com>"
    raw = (
        f"From: bob@example.com\r\nTo: a@x\r\nMessage-ID: {long_id}\r\n"
        f"In-Reply-To: {long_id}\r\nReferences: <ok@example.com> {long_id}\r\n\r\nHi\r\n"
    ).encode()
    mail = parse(raw, "a@x")
    assert mail.message_id_header.endswith("@inbound.mailpool.local>")
    assert (mail.in_reply_to, mail.references) == (None, ("<ok@example.com>",))
