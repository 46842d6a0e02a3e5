"""SendService against the real SQLite store over a real channel."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from sqlalchemy import func, select

from mailpool.v1 import send_pb2, send_service_pb2
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, next_midnight_ms, now_ms
from mailpool_server.service.models import IdentityState
from mailpool_server.service.policy import Tier
from mailpool_server.store.tables import ConversationRow, IdentityUsageRow, PendingSendRow
from tests.sending import rejected, send, send_call
from tests.support import Tenant, make_tenant, rich_error

QUEUED = send_pb2.RECIPIENT_STATUS_QUEUED
REJECTED = send_pb2.RECIPIENT_STATUS_REJECTED


async def count(app: App, table: type) -> int:
    async with app.store.read() as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(table)) or 0)


async def event_seqs(app: App, handle: str) -> list[tuple[int, str]]:
    async with app.store.read() as tx:
        identity = await tx.identity_by_handle(handle)
        assert identity is not None
        return [(e.seq, e.type) for e in await tx.events_after(identity, 0, (), 10_000)]


async def test_queued_result_has_the_contract_fields(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    response = await send(channel, tenant, to="Morgan@Northwind.example")
    assert (response.identity, response.accepted, response.rejected) == (tenant.handle, 1, 0)
    assert response.remaining == 149
    [result] = response.results
    assert result.to == "Morgan@Northwind.example"
    assert result.status == QUEUED
    assert result.pending_id.startswith("psn_") and result.conv_id.startswith("conv_")
    assert result.send_class == send_pb2.SEND_CLASS_COLD_FIRST_CONTACT
    assert result.affinity == send_pb2.AFFINITY_NEW
    assert result.account.id.startswith("acc_") and "@" in result.account.email
    assert result.dispatch_time.ToMilliseconds() == now_ms(clock)
    assert await event_seqs(app, tenant.handle) == [(1, "email.queued")]


async def test_starter_cap_is_150_a_utc_day_and_resets_at_midnight(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    for n in range(150):
        assert (await send(channel, tenant, to=f"lead{n}@example.com")).accepted == 1
    clock.set(clock.now().replace(hour=23, minute=0))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(channel, tenant, to="one-too-many@example.com")
    error = rich_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "CAP_EXCEEDED")
    retry = error.detail(error_details_pb2.RetryInfo)
    assert retry is not None
    assert retry.retry_delay.ToMilliseconds() == next_midnight_ms(now_ms(clock)) - now_ms(clock)
    body = error.detail(send_service_pb2.SendResponse)
    assert body is not None
    assert (body.accepted, body.rejected, body.remaining) == (0, 1, 0)
    assert body.results[0].reject_reason == send_pb2.REJECT_REASON_CAP_EXCEEDED

    clock.advance(hours=1)  # 00:00 UTC: a new day
    assert (await send(channel, tenant, to="tomorrow@example.com")).remaining == 149


async def test_concurrent_clients_never_oversend(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    recipients = iter(range(300))
    accepted = rejections = 0

    async def client() -> None:
        nonlocal accepted, rejections
        for n in recipients:  # shared iterator: 32 clients share 300 sends
            try:
                # Await first: `accepted += await …` would read `accepted` before
                # the await and lose the other clients' updates.
                response = await send(channel, tenant, to=f"race{n}@example.com")
                accepted += response.accepted
            except grpc.aio.AioRpcError as error:
                assert rich_error(error).reason == "CAP_EXCEEDED"
                rejections += 1

    await asyncio.gather(*(client() for _ in range(32)))
    assert (accepted, rejections) == (150, 150)
    assert await count(app, PendingSendRow) == 150
    seqs = await event_seqs(app, tenant.handle)
    assert [seq for seq, _ in seqs] == list(range(1, 151))
    assert {t for _, t in seqs} == {"email.queued"}


async def test_partial_acceptance_when_fewer_slots_than_recipients(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    for n in range(148):
        await send(channel, tenant, to=f"fill{n}@example.com")
    response = await send(channel, tenant, to=["a@example.com", "b@example.com", "c@example.com"])
    assert (response.accepted, response.rejected, response.remaining) == (2, 1, 0)
    assert [r.status for r in response.results] == [QUEUED, QUEUED, REJECTED]
    assert response.results[2].reject_reason == send_pb2.REJECT_REASON_CAP_EXCEEDED


async def test_stage_zero_mailboxes_run_out_after_15(app: App, channel: grpc.aio.Channel) -> None:
    tenant = await make_tenant(app, "fresh", "new.fresh@mailpool.local", warmup_stage=0)
    for n in range(15):
        await send(channel, tenant, to=f"warmup{n}@example.com")
    body = await rejected(channel, tenant, to="sixteenth@example.com")
    assert body.results[0].reject_reason == send_pb2.REJECT_REASON_NO_ACCOUNTS
    assert body.remaining == 135  # the identity cap is not the limit here


async def test_one_transaction_commits_all_or_nothing(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailpool_server.store.outbound import OutboundRepoSql

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    # The send's last write fails, after its recipient's rows are written.
    monkeypatch.setattr(OutboundRepoSql, "finish_send", broken)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(channel, tenant, to="atomic@example.com", idempotency_key="k-atomic")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert rich_error(caught.value).message == "internal error"
    for table in (PendingSendRow, ConversationRow, IdentityUsageRow):
        assert await count(app, table) == 0
    monkeypatch.undo()
    # Nothing was stored under the key either: the retry executes.
    response, headers = await send_call(
        channel, tenant, to="atomic@example.com", idempotency_key="k-atomic"
    )
    assert response.accepted == 1 and "idempotent-replayed" not in headers


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (IdentityState.PROVISIONING, send_pb2.REJECT_REASON_INACTIVE),
        (IdentityState.SUSPENDED, send_pb2.REJECT_REASON_SUSPENDED),
    ],
)
async def test_identity_state_rejects_every_recipient(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, state: IdentityState, reason: int
) -> None:
    await app.admin.set_identity_state(tenant.handle, state)
    body = await rejected(channel, tenant, to=["a@example.com", "b@example.com"])
    assert [r.reject_reason for r in body.results] == [reason, reason]


async def test_invalid_and_blocked_recipients_are_rejected_per_recipient(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    identity = (await app.admin.show_identity(tenant.handle)).identity
    async with app.store.write() as tx:
        await tx.add_do_not_contact(identity.org_id, "x@blocked.example", "hard_bounce", 0)
    response = await send(
        channel, tenant, to=["ok@example.com", "not an address", "X@Blocked.example"]
    )
    assert [r.status for r in response.results] == [QUEUED, REJECTED, REJECTED]
    assert [r.reject_reason for r in response.results[1:]] == [
        send_pb2.REJECT_REASON_INVALID_RECIPIENT,
        send_pb2.REJECT_REASON_DO_NOT_CONTACT,
    ]
    assert (response.accepted, response.rejected) == (1, 2)


async def test_all_rejected_for_lasting_reasons_has_no_retry_info(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(channel, tenant, to="bad address")
    error = rich_error(caught.value)
    assert error.reason == "RECIPIENTS_REJECTED"
    assert error.detail(error_details_pb2.RetryInfo) is None


async def test_other_org_cannot_send_as_identity(app: App, channel: grpc.aio.Channel) -> None:
    alice = await make_tenant(app, "acme", "alice.acme@mailpool.local")
    hank = await make_tenant(app, "globex", "hank.globex@mailpool.local", tier=Tier.GROWTH)
    hank.handle = alice.handle
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(channel, hank, to="a@example.com")
    assert rich_error(caught.value).reason == "IDENTITY_NOT_FOUND"
