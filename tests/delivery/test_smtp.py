"""The smtp transport against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import grpc
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock
from mailpool_server.service.dispatch import backoff_ms
from mailpool_server.service.policy import Tier
from tests.delivery.helpers import deliver_all, events_of
from tests.sending import send
from tests.support import Tenant


@dataclass
class Receiver:
    """What a real SMTP server saw, and how it should answer the next DATA."""

    port: int = 0
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # queued DATA replies, then 250

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.answers:
            return self.answers.pop(0)
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)  # type: ignore[arg-type]
        assert isinstance(message, EmailMessage)
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 2.0.0 queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append(data.login.decode())
        # handled=False: aiosmtpd itself answers (235, or 535 on a wrong password).
        return AuthResult(success=data.password == b"s3cret", handled=False)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            receiver, authenticator=receiver.authenticate, auth_require_tls=False, loop=loop
        ),
        "127.0.0.1",
        0,
    )
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()


async def smtp_tenant(app: App, receiver: Receiver, password: str = "s3cret") -> Tenant:
    await app.admin.create_org("smtp")
    key = await app.admin.create_key("smtp")
    await app.admin.create_identity("smtp", "sam@mailpool.local", Tier.STARTER, warmup_stage=5)
    async with app.store.write() as tx:  # only the SMTP mailbox may be picked
        identity = await tx.identity_by_handle("sam@mailpool.local")
        assert identity is not None
        for mailbox in await tx.mailboxes_of([identity.id]):
            await tx.record_health_hit(mailbox.id, 0, "2000-01-01")
    await app.admin.add_mailbox(
        "sam@mailpool.local",
        "sam.chen@tryacme.com",
        warmup_stage=5,
        smtp_url=f"smtp://sam:{password}@127.0.0.1:{receiver.port}?tls=none",
    )
    return Tenant("smtp", key, "sam@mailpool.local")


async def test_delivers_over_smtp_with_auth_and_threading(
    app: App, channel: grpc.aio.Channel, receiver: Receiver, clock: FakeClock
) -> None:
    tenant = await smtp_tenant(app, receiver)
    first = (await send(channel, tenant, to="bob@example.com", subject="Pricing")).results[0]
    assert first.account.email == "sam.chen@tryacme.com"
    await deliver_all(app)
    await send(channel, tenant, conv_id=first.conv_id, text="Following up")
    clock.advance(minutes=1)
    await deliver_all(app)
    assert receiver.logins == ["sam", "sam"]
    (sender, rcpts, original), (_, _, reply) = receiver.received
    assert (sender, rcpts) == ("sam.chen@tryacme.com", ["bob@example.com"])
    assert original["Message-ID"].endswith("@tryacme.com>")
    assert reply["Subject"] == "Re: Pricing"
    assert reply["In-Reply-To"] == original["Message-ID"]
    assert [t for t, _ in await events_of(app, tenant.handle)].count("email.sent") == 2


async def test_4xx_is_retried_with_backoff_and_5xx_fails_for_good(
    app: App, channel: grpc.aio.Channel, receiver: Receiver, clock: FakeClock
) -> None:
    tenant = await smtp_tenant(app, receiver)
    receiver.answers = ["451 4.3.0 try later", "554 5.7.1 rejected"]
    result = (await send(channel, tenant, to="bob@example.com")).results[0]
    await deliver_all(app)
    async with app.store.read() as tx:
        assert await tx.pending_status(result.pending_id) == "queued"
    clock.advance(milliseconds=backoff_ms(1) - 1)
    assert await deliver_all(app) == 0
    clock.advance(milliseconds=1)
    assert await deliver_all(app) == 1
    events = await events_of(app, tenant.handle)
    assert [t for t, _ in events] == ["email.queued", "email.send_failed_permanently"]
    assert events[1][1] == {
        "pendingId": result.pending_id,
        "recipient": "bob@example.com",
        "error": "554 5.7.1 rejected",
        "attempts": 2,
    }
    assert receiver.received == []


async def test_a_rejected_login_fails_the_send_and_costs_health(
    app: App, channel: grpc.aio.Channel, receiver: Receiver
) -> None:
    tenant = await smtp_tenant(app, receiver, password="wrong")
    result = (await send(channel, tenant, to="bob@example.com")).results[0]
    await deliver_all(app)
    events = await events_of(app, tenant.handle)
    assert events[-1][0] == "email.send_failed_permanently"
    assert str(events[-1][1]["error"]).startswith("535")
    shown = await app.admin.show_identity(tenant.handle)
    [smtp_box] = [m.mailbox for m in shown.mailboxes if m.mailbox.id == result.account.id]
    assert smtp_box.health == 85
