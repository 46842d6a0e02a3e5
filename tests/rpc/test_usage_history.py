"""IdentityService.GetUsageHistory over a real channel, the fake clock moved across days."""

from __future__ import annotations

import grpc
import pytest

from mailpool.v1 import identity_service_pb2 as pb
from mailpool.v1 import identity_service_pb2_grpc as pb_grpc
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, now_ms, utc_day
from tests.sending import send
from tests.support import Tenant, make_tenant, rich_error


async def history(
    channel: grpc.aio.Channel, tenant: Tenant, days: int | None = None
) -> pb.GetUsageHistoryResponse:
    request = pb.GetUsageHistoryRequest(identity=tenant.handle)
    if days is not None:
        request.days = days
    return await pb_grpc.IdentityServiceStub(channel).GetUsageHistory(
        request, metadata=tenant.metadata
    )


async def test_every_day_oldest_first_ending_today(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    first = utc_day(now_ms(clock))
    await send(channel, tenant, to=["bob@example.com", "carol@example.com"])
    clock.advance(days=2)
    await send(channel, tenant, to="dan@example.com")
    today = utc_day(now_ms(clock))

    answer = await history(channel, tenant, 4)
    assert answer.identity == tenant.handle
    assert [(d.day, d.accepted, d.cap) for d in answer.days] == [
        ("2026-04-26", 0, 150),
        (first, 2, 150),
        ("2026-04-28", 0, 150),
        (today, 1, 150),
    ]
    assert today == "2026-04-29"
    assert len(answer.mailboxes) == 3
    for day_index, accepted in enumerate([0, 2, 0, 1]):
        assert sum(m.days[day_index].sent for m in answer.mailboxes) == accepted
    for m in answer.mailboxes:
        assert m.id.startswith("acc_") and m.email
        assert [(d.day, d.cap) for d in m.days] == [(d.day, 50) for d in answer.days]

    default = await history(channel, tenant)
    assert len(default.days) == 30 and default.days[-1].day == today
    assert default.days[-4:] == answer.days
    assert len((await history(channel, tenant, 90)).days) == 90


async def test_mailbox_caps_come_from_the_current_warmup_stage(
    app: App, channel: grpc.aio.Channel, clock: FakeClock
) -> None:
    tenant = await make_tenant(app, "initech", "peter.initech@mailpool.local", warmup_stage=0)
    await send(channel, tenant, to="bob@example.com")
    answer = await history(channel, tenant, 1)
    assert [(d.accepted, d.cap) for d in answer.days] == [(1, 150)]
    assert {d.cap for m in answer.mailboxes for d in m.days} == {5}


@pytest.mark.parametrize("days", [0, -1, 91])
async def test_days_out_of_range_names_the_field(
    channel: grpc.aio.Channel, tenant: Tenant, days: int
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await history(channel, tenant, days)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message.startswith("days")


async def test_another_orgs_identity_is_not_found(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    other = await make_tenant(app, "globex", "hank.globex@mailpool.local")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await pb_grpc.IdentityServiceStub(channel).GetUsageHistory(
            pb.GetUsageHistoryRequest(identity=other.handle), metadata=tenant.metadata
        )
    error = rich_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "IDENTITY_NOT_FOUND")
