"""Sender on the in-memory store: caps, the picker, idempotency, threading and the
listener, with time from the FakeClock (08:00 UTC: caps reset 16 hours later)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter

import pytest

from mailpool_server.service.admin import Admin
from mailpool_server.service.clock import UTC, FakeClock, now_ms, utc_day
from mailpool_server.service.errors import (
    AllRecipientsRejected,
    ConversationNotFound,
    ErrorReason,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdentityNotFound,
)
from mailpool_server.service.events import EmailQueued, EventType
from mailpool_server.service.models import (
    Affinity,
    IdentityState,
    Message,
    PendingStatus,
    RecipientOutcome,
    RejectReason,
    SendClass,
    SendResult,
    TimelineType,
)
from mailpool_server.service.send import SendCommand, Sender, SendOutcome
from tests.memory_store import MemoryStore
from tests.service.fakes import RecordingListener
from tests.service.tenants import Tenant, make_tenant

UNTIL_MIDNIGHT_MS = 16 * 3_600_000
COLD_GAP_MS = 60_000


@pytest.fixture
def sender(store: MemoryStore, clock: FakeClock, listener: RecordingListener) -> Sender:
    return Sender(store, clock, listener, cold_gap_ms=COLD_GAP_MS)


def new_send(
    tenant: Tenant, *to: str, subject: str = "Hello", key: str | None = None
) -> SendCommand:
    """A send opening a conversation with each recipient."""
    return SendCommand(
        identity=tenant.handle, to=to, subject=subject, text="Hi there", idempotency_key=key
    )


def reply(tenant: Tenant, conv_id: str, labels: tuple[str, ...] = ()) -> SendCommand:
    return SendCommand(identity=tenant.handle, conv_id=conv_id, text="Following up", labels=labels)


def recipients(count: int, start: int = 0) -> tuple[str, ...]:
    return tuple(f"r{n}@example.com" for n in range(start, start + count))


async def send(sender: Sender, tenant: Tenant, command: SendCommand) -> SendResult:
    """A send that is not a replay; its result."""
    outcome = await sender.send(tenant.org_id, command)
    assert not outcome.replayed
    return outcome.result


async def rejected(sender: Sender, tenant: Tenant, command: SendCommand) -> AllRecipientsRejected:
    with pytest.raises(AllRecipientsRejected) as caught:
        await sender.send(tenant.org_id, command)
    return caught.value


def reasons(result: SendResult) -> Counter[RejectReason | None]:
    return Counter(o.reason for o in result.results)


def placed(outcome: RecipientOutcome) -> tuple[str, Affinity, SendClass]:
    """Where a queued recipient went: (mailbox email, affinity, class)."""
    assert outcome.queued is not None, outcome
    return outcome.queued.mailbox.email, outcome.queued.affinity, outcome.queued.send_class


def conv_of(outcome: RecipientOutcome) -> str:
    assert outcome.queued is not None, outcome
    return outcome.queued.conv_id


def head(store: MemoryStore, tenant: Tenant) -> int:
    return store.committed.identities[tenant.identity.id].last_seq


# -- queueing ------------------------------------------------------------------------


async def test_a_send_queues_each_recipient_with_its_event(
    sender: Sender, store: MemoryStore, alice: Tenant, clock: FakeClock, listener: RecordingListener
) -> None:
    result = await send(sender, alice, new_send(alice, "Bob@Example.com", "carol@example.com"))
    assert (result.identity, result.accepted, result.rejected, result.remaining) == (
        alice.handle,
        2,
        0,
        148,
    )
    bob, carol = result.results
    assert bob.to == "Bob@Example.com"  # as given; stored normalized
    m1, m2, _ = (m.email for m in alice.mailboxes)
    # Equal mailboxes: the oldest first, then the one with the most room left.
    assert placed(bob) == (m1, Affinity.NEW, SendClass.COLD_FIRST_CONTACT)
    assert placed(carol) == (m2, Affinity.NEW, SendClass.COLD_FIRST_CONTACT)
    async with store.read() as tx:
        events = await tx.events_after(alice.identity, 0, (), 10)
        used = await tx.identity_used([alice.identity.id], utc_day(now_ms(clock)))
        for outcome in (bob, carol):
            assert outcome.queued is not None
            assert await tx.pending_status(outcome.queued.pending_id) is PendingStatus.QUEUED
    assert used == {alice.identity.id: 2}
    assert [(e.seq, e.type) for e in events] == [
        (1, EventType.EMAIL_QUEUED),
        (2, EventType.EMAIL_QUEUED),
    ]
    first = events[0].payload
    assert isinstance(first, EmailQueued) and first.recipient == "bob@example.com"
    assert listener.take() == [(alice.identity.id, 2)]


async def test_cold_sends_are_paced_per_mailbox(
    sender: Sender, admin: Admin, clock: FakeClock
) -> None:
    tenant = await make_tenant(admin, "slow", "slow@acme.test", warmup_stage=0)
    result = await send(sender, tenant, new_send(tenant, *recipients(6)))
    now = now_ms(clock)
    by_mailbox: dict[str, list[int]] = {}
    for outcome in result.results:
        assert outcome.queued is not None
        by_mailbox.setdefault(outcome.queued.mailbox.email, []).append(outcome.queued.dispatch_at)
    assert sorted(by_mailbox.values()) == [[now, now + COLD_GAP_MS]] * 3


# -- caps ----------------------------------------------------------------------------


async def test_mailbox_caps_accept_part_of_a_send_then_reject_until_midnight(
    sender: Sender, admin: Admin, store: MemoryStore, listener: RecordingListener
) -> None:
    # Warmup stage 0: 5 a day per mailbox, 15 for the three of a starter identity.
    tenant = await make_tenant(admin, "new", "new@acme.test", warmup_stage=0)
    result = await send(sender, tenant, new_send(tenant, *recipients(20)))
    assert (result.accepted, result.rejected, result.remaining) == (15, 5, 135)
    assert reasons(result) == {None: 15, RejectReason.NO_ACCOUNTS: 5}
    per_mailbox = Counter(placed(o)[0] for o in result.results if o.queued)
    assert per_mailbox == {m.email: 5 for m in tenant.mailboxes}
    listener.take()

    error = await rejected(sender, tenant, new_send(tenant, "late@example.com"))
    assert error.reason is ErrorReason.NO_ACCOUNTS
    assert error.retry_after_ms == UNTIL_MIDNIGHT_MS
    assert reasons(error.result) == {RejectReason.NO_ACCOUNTS: 1}
    assert head(store, tenant) == 15  # nothing of the rejected send was stored
    assert listener.take() == []


async def test_the_identity_cap_accepts_part_of_a_send_then_resets_at_midnight(
    sender: Sender, alice: Tenant, clock: FakeClock
) -> None:
    for start, count in ((0, 50), (50, 50), (100, 40)):  # 140 of the starter tier's 150
        await send(sender, alice, new_send(alice, *recipients(count, start)))
    result = await send(sender, alice, new_send(alice, *recipients(20, 200)))
    assert (result.accepted, result.rejected, result.remaining) == (10, 10, 0)
    assert [o.reason for o in result.results] == [None] * 10 + [RejectReason.CAP_EXCEEDED] * 10

    error = await rejected(sender, alice, new_send(alice, "late@example.com"))
    assert error.reason is ErrorReason.CAP_EXCEEDED
    assert error.retry_after_ms == UNTIL_MIDNIGHT_MS
    clock.advance(minutes=30)
    error = await rejected(sender, alice, new_send(alice, "late@example.com"))
    assert error.retry_after_ms == UNTIL_MIDNIGHT_MS - 30 * 60_000

    clock.set(dt.datetime(2026, 4, 28, 0, 0, tzinfo=UTC))
    result = await send(sender, alice, new_send(alice, "late@example.com"))
    assert (result.accepted, result.remaining) == (1, 149)


async def test_rejecting_every_recipient_for_their_own_reasons_has_no_retry_hint(
    sender: Sender, alice: Tenant, store: MemoryStore, clock: FakeClock
) -> None:
    async with store.write() as tx:
        await tx.add_do_not_contact(alice.org_id, "bob@example.com", "hard_bounce", now_ms(clock))
    error = await rejected(sender, alice, new_send(alice, "BOB@example.com", "not-an-address"))
    assert error.reason is ErrorReason.RECIPIENTS_REJECTED
    assert error.retry_after_ms is None
    assert [o.reason for o in error.result.results] == [
        RejectReason.DO_NOT_CONTACT,
        RejectReason.INVALID_RECIPIENT,
    ]
    assert (error.result.accepted, error.result.rejected) == (0, 2)
    assert store.committed.conversations == {}
    assert store.committed.identity_usage == {}


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (IdentityState.SUSPENDED, RejectReason.SUSPENDED),
        (IdentityState.PROVISIONING, RejectReason.INACTIVE),
    ],
)
async def test_an_identity_that_cannot_send_rejects_everyone(
    sender: Sender, admin: Admin, alice: Tenant, state: IdentityState, reason: RejectReason
) -> None:
    await admin.set_identity_state(alice.handle, state)
    error = await rejected(sender, alice, new_send(alice, "bob@example.com", "carol@example.com"))
    assert error.reason is ErrorReason.RECIPIENTS_REJECTED
    assert reasons(error.result) == {reason: 2}


# -- the picker and affinity ---------------------------------------------------------


async def test_a_recipient_stays_on_their_mailbox_until_it_cannot_send(
    sender: Sender, alice: Tenant, store: MemoryStore, clock: FakeClock
) -> None:
    m1, m2, _ = alice.mailboxes
    first = await send(sender, alice, new_send(alice, "bob@example.com"))
    assert placed(first.results[0]) == (m1.email, Affinity.NEW, SendClass.COLD_FIRST_CONTACT)
    # Pinned: m1 again although m2 and m3 have more room, and paced on m1.
    again = (await send(sender, alice, new_send(alice, "bob@example.com"))).results[0]
    assert placed(again) == (m1.email, Affinity.EXISTING, SendClass.COLD_FOLLOWUP)
    assert again.queued is not None
    assert again.queued.dispatch_at == now_ms(clock) + COLD_GAP_MS

    async with store.write() as tx:  # m1's health falls below the threshold
        await tx.record_health_hit(m1.id, 10, utc_day(now_ms(clock)))
    moved = (await send(sender, alice, new_send(alice, "bob@example.com"))).results[0]
    assert placed(moved) == (m2.email, Affinity.REASSIGNED, SendClass.COLD_FOLLOWUP)
    async with store.read() as tx:
        contacts = await tx.contacts_among(alice.identity.id, ["bob@example.com"])
    bob = contacts["bob@example.com"]
    assert (bob.pinned_mailbox_id, bob.outbound_count) == (m2.id, 3)


async def test_a_reply_goes_out_from_its_conversations_mailbox(
    sender: Sender, alice: Tenant
) -> None:
    opened = await send(sender, alice, new_send(alice, "bob@example.com", "carol@example.com"))
    carol = opened.results[1]
    [answer] = (await send(sender, alice, reply(alice, conv_of(carol)))).results
    assert answer.to == "carol@example.com"
    assert placed(answer)[:2] == (placed(carol)[0], Affinity.EXISTING)
    assert conv_of(answer) == conv_of(carol)


# -- idempotency -----------------------------------------------------------------------


async def test_a_keyed_send_is_replayed_without_sending_again(
    sender: Sender, alice: Tenant, store: MemoryStore, listener: RecordingListener
) -> None:
    command = new_send(alice, "bob@example.com", key="order-1")
    first = await send(sender, alice, command)
    listener.take()
    assert await sender.send(alice.org_id, command) == SendOutcome(first, replayed=True)
    assert head(store, alice) == 1
    assert listener.take() == []
    with pytest.raises(IdempotencyKeyReused):
        await sender.send(alice.org_id, new_send(alice, "carol@example.com", key="order-1"))


async def test_a_reused_key_with_an_unknown_identity_reports_the_identity(
    sender: Sender, alice: Tenant
) -> None:
    await send(sender, alice, new_send(alice, "bob@example.com", key="order-1"))
    stranger = dataclasses.replace(
        new_send(alice, "bob@example.com", key="order-1"), identity="nobody@mailpool.test"
    )
    with pytest.raises(IdentityNotFound):
        await sender.send(alice.org_id, stranger)


async def test_a_key_is_per_org_and_lives_a_day(
    sender: Sender, admin: Admin, alice: Tenant, clock: FakeClock
) -> None:
    other = await make_tenant(admin, "other", "olga@other.test")
    await send(sender, alice, new_send(alice, "bob@example.com", key="k"))
    await send(sender, other, new_send(other, "bob@example.com", key="k"))  # not a replay
    clock.advance(hours=23, minutes=59)
    with pytest.raises(IdempotencyKeyReused):
        await sender.send(alice.org_id, new_send(alice, "carol@example.com", key="k"))
    clock.advance(minutes=1)
    await send(sender, alice, new_send(alice, "carol@example.com", key="k"))  # a new life


async def test_a_rejected_keyed_send_leaves_its_key_free(sender: Sender, alice: Tenant) -> None:
    await rejected(sender, alice, new_send(alice, "not-an-address", key="k"))
    result = await send(sender, alice, new_send(alice, "bob@example.com", key="k"))
    assert result.accepted == 1


async def test_a_key_held_by_a_running_send_is_in_use(
    store: MemoryStore, clock: FakeClock, listener: RecordingListener, alice: Tenant
) -> None:
    impatient = Sender(store, clock, listener, idempotency_wait_s=0.01)
    async with store.write():  # another send is still writing
        with pytest.raises(IdempotencyKeyInUse):
            await impatient.send(alice.org_id, new_send(alice, "bob@example.com", key="k"))


# -- threading -------------------------------------------------------------------------


async def messages_of(store: MemoryStore, conv_id: str) -> list[Message]:
    async with store.read() as tx:
        return [e.message for e in await tx.timeline_of(conv_id) if e.message is not None]


async def test_replies_thread_with_a_single_re(
    sender: Sender, alice: Tenant, store: MemoryStore
) -> None:
    opened = await send(sender, alice, new_send(alice, "bob@example.com", subject="RE: re: Hi"))
    conv_id = conv_of(opened.results[0])
    await send(sender, alice, reply(alice, conv_id))
    await send(sender, alice, reply(alice, conv_id, labels=("lead",)))
    await send(sender, alice, reply(alice, conv_id, labels=("lead",)))
    first, *replies = await messages_of(store, conv_id)
    assert first.subject == "RE: re: Hi"
    assert [m.subject for m in replies] == ["Re: Hi"] * 3
    # Each reply answers the one before, and the chain grows by one each time.
    chain = [m.message_id_header for m in (first, *replies)]
    for n, message in enumerate(replies, start=1):
        assert message.in_reply_to == chain[n - 1]
        assert message.references == tuple(chain[:n])
    async with store.read() as tx:
        conversation = await tx.conversation_by_id(conv_id)
        timeline = await tx.timeline_of(conv_id)
    assert conversation is not None
    assert (conversation.subject, conversation.message_count, conversation.labels) == (
        "RE: re: Hi",
        4,
        ("lead",),
    )
    assert [e.type for e in timeline].count(TimelineType.LABEL_ADDED) == 1


async def test_replying_to_another_identitys_conversation_is_not_found(
    sender: Sender, admin: Admin, alice: Tenant
) -> None:
    bob = await make_tenant(admin, "acme", "bob@acme.test", new_org=False)
    opened = await send(sender, bob, new_send(bob, "carol@example.com"))
    with pytest.raises(ConversationNotFound):
        await sender.send(alice.org_id, reply(alice, conv_of(opened.results[0])))


# -- announcing ------------------------------------------------------------------------


async def test_the_listener_hears_the_new_head_once_it_is_committed(
    sender: Sender, alice: Tenant, listener: RecordingListener
) -> None:
    await send(sender, alice, new_send(alice, *recipients(3)))
    await send(sender, alice, new_send(alice, *recipients(2, 3)))
    # RecordingListener.take checks the store held each head when it was announced.
    assert listener.take() == [(alice.identity.id, 3), (alice.identity.id, 5)]
    await rejected(sender, alice, new_send(alice, "not-an-address"))
    assert listener.take() == []
