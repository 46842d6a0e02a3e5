"""IdentityService over a real channel, with usage moved by the fake clock."""

from __future__ import annotations

import grpc
import pytest

from mailpool.v1 import identity_pb2, mailbox_pb2
from mailpool.v1 import identity_service_pb2 as pb
from mailpool.v1 import identity_service_pb2_grpc as pb_grpc
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, next_midnight_ms, now_ms, utc_day
from mailpool_server.service.models import IdentityState
from mailpool_server.service.policy import Tier
from tests.support import Tenant, rich_error


async def test_get_identity_reports_tier_state_caps_and_mailboxes(
    app: App, channel: grpc.aio.Channel, clock: FakeClock
) -> None:
    await app.admin.create_org("acme")
    key = await app.admin.create_key("acme")
    await app.admin.create_identity(
        "acme", "Bob.Acme@mailpool.local", Tier.GROWTH, IdentityState.PROVISIONING, 2
    )
    stub = pb_grpc.IdentityServiceStub(channel)
    response = await stub.GetIdentity(
        pb.GetIdentityRequest(identity="bob.acme@mailpool.local"),
        metadata=(("authorization", f"Bearer {key}"),),
    )
    identity = response.identity
    assert identity.handle == "bob.acme@mailpool.local"
    assert identity.tier == identity_pb2.TIER_GROWTH
    assert identity.state == identity_pb2.IDENTITY_STATE_PROVISIONING
    assert (identity.daily_cap, identity.used_today, identity.remaining_today) == (500, 0, 500)
    assert identity.reset_time.ToMilliseconds() == next_midnight_ms(now_ms(clock))
    assert len(identity.mailboxes) == 10
    first = identity.mailboxes[0]
    assert first.id.startswith("acc_")
    assert len(first.id) == 20
    assert (first.warmup_stage, first.health, first.daily_cap) == (2, 100, 20)
    assert first.transport == mailbox_pb2.MAILBOX_TRANSPORT_MAILDIR
    assert not first.excluded


async def test_usage_resets_at_midnight_utc(
    app: App, channel: grpc.aio.Channel, clock: FakeClock, tenant: Tenant
) -> None:
    clock.set(clock.now().replace(hour=23, minute=59, second=59))
    identity = await app.admin.show_identity(tenant.handle)
    async with app.store.write() as tx:
        assert await tx.add_identity_usage(identity.identity.id, utc_day(now_ms(clock)), 40, 150)
    stub = pb_grpc.IdentityServiceStub(channel)
    request = pb.GetIdentityRequest(identity=tenant.handle)
    before = (await stub.GetIdentity(request, metadata=tenant.metadata)).identity
    assert (before.used_today, before.remaining_today) == (40, 110)

    clock.advance(seconds=1)
    after = (await stub.GetIdentity(request, metadata=tenant.metadata)).identity
    assert (after.used_today, after.remaining_today) == (0, 150)
    assert after.reset_time.ToMilliseconds() - before.reset_time.ToMilliseconds() == 86_400_000


async def test_usage_counter_refuses_to_pass_the_cap(app: App, tenant: Tenant) -> None:
    identity = (await app.admin.show_identity(tenant.handle)).identity
    async with app.store.write() as tx:
        assert await tx.add_identity_usage(identity.id, "2026-04-27", 149, 150)
        assert not await tx.add_identity_usage(identity.id, "2026-04-27", 2, 150)
        assert await tx.add_identity_usage(identity.id, "2026-04-27", 1, 150)
        assert not await tx.add_identity_usage(identity.id, "2026-04-27", 1, 150)
        assert (await tx.identity_used([identity.id], "2026-04-27")) == {identity.id: 150}


async def test_list_identities_pages_by_handle_within_the_org(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    for name in ("carol", "dave", "erin"):
        await app.admin.create_identity(tenant.org, f"{name}.acme@mailpool.local", Tier.STARTER)
    await app.admin.create_org("globex")
    await app.admin.create_identity("globex", "zed.globex@mailpool.local", Tier.STARTER)
    stub = pb_grpc.IdentityServiceStub(channel)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListIdentities(
            pb.ListIdentitiesRequest(page_size=3, page_token=token), metadata=tenant.metadata
        )
        seen += [i.handle for i in page.identities]
        token = page.next_page_token
        if not token:
            break
    assert seen == [
        "alice.acme@mailpool.local",
        "carol.acme@mailpool.local",
        "dave.acme@mailpool.local",
        "erin.acme@mailpool.local",
    ]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListIdentitiesRequest(page_size=201), "pageSize"),
        (pb.ListIdentitiesRequest(page_size=-1), "pageSize"),
        (pb.ListIdentitiesRequest(page_token="not a token"), "pageToken"),
        (pb.ListIdentitiesRequest(page_token="WzFd"), "pageToken"),  # [1]: wrong shape
    ],
)
async def test_list_identities_validation_names_the_field(
    channel: grpc.aio.Channel, tenant: Tenant, request_: pb.ListIdentitiesRequest, field: str
) -> None:
    stub = pb_grpc.IdentityServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListIdentities(request_, metadata=tenant.metadata)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message.startswith(field)
