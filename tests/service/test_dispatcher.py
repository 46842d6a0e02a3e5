"""Dispatcher on the in-memory store with a scripted transport: every claimed send ends
sent, failed or back in the queue, and backoff and leases run on the FakeClock."""

from __future__ import annotations

import asyncio

import pytest

from mailpool_server.service.clock import FakeClock, now_ms, utc_day
from mailpool_server.service.dispatch import Dispatcher
from mailpool_server.service.events import (
    EmailQueued,
    EmailSendFailedPermanently,
    EmailSent,
    EventPayload,
    MailboxReplaced,
    SentMessage,
)
from mailpool_server.service.models import Mailbox, MailboxRef, PendingStatus, Transport
from mailpool_server.service.outbound import PermanentDeliveryError, TransientDeliveryError
from mailpool_server.service.ports import MailboxDay
from mailpool_server.service.send import SendCommand, Sender
from tests.memory_store import MemoryStore
from tests.service.fakes import Outcome, RecordingListener, ScriptedTransport, settle
from tests.service.tenants import Tenant

LEASE_MS = 60_000
FIRST_BACKOFF_MS = 30_000


@pytest.fixture
def transport() -> ScriptedTransport:
    return ScriptedTransport()


@pytest.fixture
def sender(store: MemoryStore, clock: FakeClock, listener: RecordingListener) -> Sender:
    return Sender(store, clock, listener)


def dispatcher_for(
    store: MemoryStore,
    clock: FakeClock,
    listener: RecordingListener,
    transport: ScriptedTransport,
    *,
    max_attempts: int = 6,
) -> Dispatcher:
    return Dispatcher(
        store,
        clock,
        listener,
        {Transport.MAILDIR: transport},
        lease_ms=LEASE_MS,
        max_attempts=max_attempts,
    )


@pytest.fixture
def dispatcher(
    store: MemoryStore, clock: FakeClock, listener: RecordingListener, transport: ScriptedTransport
) -> Dispatcher:
    return dispatcher_for(store, clock, listener, transport)


async def queue(sender: Sender, tenant: Tenant, *to: str) -> list[str]:
    """Queue a send to each recipient; their pending ids."""
    command = SendCommand(identity=tenant.handle, to=to, subject="Hello", text="Hi there")
    result = (await sender.send(tenant.org_id, command)).result
    ids = [o.queued.pending_id for o in result.results if o.queued is not None]
    assert len(ids) == len(to)
    return ids


async def status(store: MemoryStore, pending_id: str) -> PendingStatus | None:
    async with store.read() as tx:
        return await tx.pending_status(pending_id)


async def log(store: MemoryStore, tenant: Tenant) -> list[EventPayload]:
    async with store.read() as tx:
        return [e.payload for e in await tx.events_after(tenant.identity, 0, (), 1000)]


async def mailbox_now(store: MemoryStore, mailbox: Mailbox) -> Mailbox:
    async with store.read() as tx:
        found = await tx.mailbox_by_email(mailbox.email)
    assert found is not None
    return found


async def days_of(store: MemoryStore, mailbox: Mailbox) -> list[MailboxDay]:
    async with store.read() as tx:
        return await tx.mailbox_days(mailbox.id, None, "9999-12-31")


def kinds(payloads: list[EventPayload]) -> list[str]:
    return [p.TYPE.value for p in payloads]


async def test_a_delivered_send_is_recorded_once(
    dispatcher: Dispatcher,
    sender: Sender,
    transport: ScriptedTransport,
    store: MemoryStore,
    alice: Tenant,
    clock: FakeClock,
    listener: RecordingListener,
) -> None:
    [pending_id] = await queue(sender, alice, "bob@example.com")
    listener.take()
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    [message] = transport.accepted
    m1 = alice.mailboxes[0]
    assert (message.recipient, message.subject, message.text, message.attempt) == (
        "bob@example.com",
        "Hello",
        "Hi there",
        1,
    )
    assert (message.handle, message.mailbox.email) == (alice.handle, m1.email)
    assert await status(store, pending_id) is PendingStatus.SENT
    queued, sent = await log(store, alice)
    assert isinstance(queued, EmailQueued)
    assert sent == EmailSent(
        pending_id,
        SentMessage(
            message.message_id,
            message.message_id_header,
            m1.email,
            ("bob@example.com",),
            "Hello",
        ),
        MailboxRef(m1.id, m1.email),
    )
    assert await days_of(store, m1) == [MailboxDay(utc_day(now_ms(clock)), 1, 0)]
    assert listener.take() == [(alice.identity.id, 2)]


async def test_a_transient_failure_is_retried_with_backoff(
    dispatcher: Dispatcher,
    sender: Sender,
    transport: ScriptedTransport,
    store: MemoryStore,
    alice: Tenant,
    clock: FakeClock,
    listener: RecordingListener,
) -> None:
    [pending_id] = await queue(sender, alice, "bob@example.com")
    listener.take()
    transport.script["bob@example.com"] = [
        TransientDeliveryError("421 busy"),
        TransientDeliveryError("421 still busy"),
    ]
    assert await dispatcher.run_once() == 1
    assert await status(store, pending_id) is PendingStatus.QUEUED
    assert listener.take() == []  # a retry is not an event
    # 30 s after the first failure, 60 s after the second: due to the millisecond.
    for backoff_ms in (FIRST_BACKOFF_MS, 2 * FIRST_BACKOFF_MS):
        clock.advance(milliseconds=backoff_ms - 1)
        assert await dispatcher.run_once() == 0
        clock.advance(milliseconds=1)
        assert await dispatcher.run_once() == 1
    assert [m.attempt for m in transport.calls] == [1, 2, 3]
    assert await status(store, pending_id) is PendingStatus.SENT
    assert kinds(await log(store, alice)) == ["email.queued", "email.sent"]


async def test_retries_run_out_in_a_permanent_failure(
    sender: Sender,
    transport: ScriptedTransport,
    store: MemoryStore,
    alice: Tenant,
    clock: FakeClock,
    listener: RecordingListener,
) -> None:
    dispatcher = dispatcher_for(store, clock, listener, transport, max_attempts=2)
    [pending_id] = await queue(sender, alice, "bob@example.com")
    transport.script["bob@example.com"] = [
        TransientDeliveryError("421 busy"),
        TransientDeliveryError("421 still busy"),
    ]
    await dispatcher.run_once()
    clock.advance(milliseconds=FIRST_BACKOFF_MS)
    await dispatcher.run_once()
    assert await status(store, pending_id) is PendingStatus.FAILED
    assert (await log(store, alice))[-1] == EmailSendFailedPermanently(
        pending_id, "bob@example.com", "421 still busy", 2
    )


async def test_a_transport_bug_is_retried_not_lost(
    dispatcher: Dispatcher,
    sender: Sender,
    transport: ScriptedTransport,
    store: MemoryStore,
    alice: Tenant,
    clock: FakeClock,
) -> None:
    [pending_id] = await queue(sender, alice, "bob@example.com")
    transport.script["bob@example.com"] = [RuntimeError("a bug in the transport")]
    await dispatcher.run_once()
    assert await status(store, pending_id) is PendingStatus.QUEUED
    clock.advance(milliseconds=FIRST_BACKOFF_MS)
    assert await dispatcher.run_once() == 1
    assert await status(store, pending_id) is PendingStatus.SENT


async def test_a_permanent_failure_is_final_and_costs_no_health(
    dispatcher: Dispatcher,
    sender: Sender,
    transport: ScriptedTransport,
    store: MemoryStore,
    alice: Tenant,
    clock: FakeClock,
) -> None:
    [pending_id] = await queue(sender, alice, "bob@example.com")
    transport.script["bob@example.com"] = [PermanentDeliveryError("550 no such user")]
    await dispatcher.run_once()
    clock.advance(hours=2)
    assert await dispatcher.run_once() == 0
    assert await status(store, pending_id) is PendingStatus.FAILED
    assert (await log(store, alice))[-1] == EmailSendFailedPermanently(
        pending_id, "bob@example.com", "550 no such user", 1
    )
    m1 = alice.mailboxes[0]
    assert (await mailbox_now(store, m1)).health == m1.health
    assert await days_of(store, m1) == [MailboxDay(utc_day(now_ms(clock)), 0, 0)]  # no hit


async def test_an_auth_failure_costs_the_mailbox_health(
    dispatcher: Dispatcher,
    sender: Sender,
    transport: ScriptedTransport,
    store: MemoryStore,
    alice: Tenant,
    clock: FakeClock,
) -> None:
    await queue(sender, alice, "bob@example.com")
    transport.script["bob@example.com"] = [
        PermanentDeliveryError("535 bad auth", auth_failure=True)
    ]
    await dispatcher.run_once()
    m1 = alice.mailboxes[0]
    assert (await mailbox_now(store, m1)).health == m1.health - 15
    assert await days_of(store, m1) == [MailboxDay(utc_day(now_ms(clock)), 0, 1)]
    assert kinds(await log(store, alice)) == ["email.queued", "email.send_failed_permanently"]


async def test_an_auth_failure_that_kills_a_mailbox_moves_its_recipients(
    dispatcher: Dispatcher,
    sender: Sender,
    transport: ScriptedTransport,
    store: MemoryStore,
    alice: Tenant,
    clock: FakeClock,
) -> None:
    m1, m2, m3 = alice.mailboxes
    async with store.write() as tx:  # one more hit takes m1 below 20: dead
        await tx.set_warmup(m1.id, m1.warmup_stage, 0, 30, utc_day(now_ms(clock)))
    # bob and erin land on m1 (erin a cold gap later), carol on m2, dan on m3.
    await queue(sender, alice, "bob@example.com", "carol@example.com", "dan@example.com")
    [erin] = await queue(sender, alice, "erin@example.com")
    transport.script["bob@example.com"] = [PermanentDeliveryError("535", auth_failure=True)]
    assert await dispatcher.run_once() == 3
    assert (await mailbox_now(store, m1)).health == 15
    replaced = [p for p in await log(store, alice) if isinstance(p, MailboxReplaced)]
    # Pinned recipients move round-robin over the healthy peers, healthiest and oldest first.
    assert replaced == [
        MailboxReplaced(MailboxRef(m1.id, m1.email), 2, MailboxRef(m2.id, m2.email))
    ]
    clock.advance(minutes=1)
    assert await dispatcher.run_once() == 1
    assert await status(store, erin) is PendingStatus.SENT
    assert transport.accepted[-1].mailbox.email == m3.email


@pytest.mark.parametrize(
    "late_outcome",
    [None, TransientDeliveryError("421"), PermanentDeliveryError("535", auth_failure=True)],
    ids=["accepted", "transient", "permanent"],
)
async def test_a_dispatcher_that_lost_its_lease_records_nothing(
    dispatcher: Dispatcher,
    sender: Sender,
    transport: ScriptedTransport,
    store: MemoryStore,
    alice: Tenant,
    clock: FakeClock,
    listener: RecordingListener,
    late_outcome: Outcome,
) -> None:
    [pending_id] = await queue(sender, alice, "bob@example.com")
    listener.take()
    stalled = asyncio.Event()
    transport.hold["bob@example.com"] = stalled
    transport.script["bob@example.com"] = [late_outcome]
    first = asyncio.ensure_future(dispatcher.run_once())
    await settle(lambda: len(transport.calls) == 1)
    # The lease runs out; another dispatcher takes the send over and delivers it.
    clock.advance(milliseconds=LEASE_MS + 1)
    other = dispatcher_for(store, clock, listener, transport)
    assert await other.run_once() == 1
    assert await status(store, pending_id) is PendingStatus.SENT
    heard = listener.take()
    stalled.set()
    assert await first == 1
    assert [m.attempt for m in transport.calls] == [1, 2]
    assert await status(store, pending_id) is PendingStatus.SENT
    assert kinds(await log(store, alice)) == ["email.queued", "email.sent"]
    assert (await mailbox_now(store, alice.mailboxes[0])).health == alice.mailboxes[0].health
    assert heard == [(alice.identity.id, 2)]
    assert listener.take() == []
