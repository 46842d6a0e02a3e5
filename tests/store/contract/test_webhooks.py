"""Webhook endpoints: one per org, pause and enable, the relay's cursors, and the lease
that lets one relay at a time deliver an endpoint."""

from __future__ import annotations

import asyncio

import pytest

from mailpool_server.service.ports import Store, Tx
from mailpool_server.service.webhook_models import EndpointStatus, PauseReason, WebhookEndpoint
from tests.store.contract.seed import REFUSED, T0, World, abandoned_write, identity, org

LEASE = 30_000


def endpoint(org_id: str, n: int = 1, **fields: object) -> WebhookEndpoint:
    values: dict[str, object] = {
        "id": f"whk_{n}",
        "org_id": org_id,
        "url": f"https://hooks{n}.example/in",
        "secret": f"whsec_{n:048x}",
        "status": EndpointStatus.ACTIVE,
        "created_at": T0,
    }
    values.update(fields)
    return WebhookEndpoint(**values)  # type: ignore[arg-type]


async def add(store: Store, hook: WebhookEndpoint) -> WebhookEndpoint:
    async with store.write() as tx:
        await tx.add_webhook(hook)
    return hook


async def read(store: Store, endpoint_id: str) -> WebhookEndpoint | None:
    async with store.read() as tx:
        return await tx.webhook_by_id(endpoint_id)


async def claim(store: Store, owner: str, now: int) -> list[str]:
    async with store.write() as tx:
        return [w.id for w in await tx.claim_webhooks(owner, now, now + LEASE, 10)]


async def test_an_endpoint_is_stored_and_read_back_by_org_and_id(
    store: Store, world: World
) -> None:
    hook = await add(store, endpoint(world.org.id))
    async with store.read() as tx:
        assert await tx.webhook_of_org(world.org.id) == hook
        assert await tx.webhook_by_id(hook.id) == hook
        assert await tx.webhook_of_org("org_none") is None
        assert await tx.webhook_by_id("whk_none") is None


async def test_one_endpoint_per_org_and_only_for_an_org(store: Store, world: World) -> None:
    await add(store, endpoint(world.org.id))
    with pytest.raises(REFUSED):
        await add(store, endpoint(world.org.id, 2))
    with pytest.raises(REFUSED):
        await add(store, endpoint("org_missing", 3))


async def test_url_secret_pause_and_enable(store: Store, world: World) -> None:
    hook = await add(store, endpoint(world.org.id))
    async with store.write() as tx:
        await tx.set_webhook_url(hook.id, "https://new.example/hook")
        await tx.set_webhook_secret(hook.id, "whsec_new")
        await tx.set_webhook_failures(hook.id, 2)
        await tx.pause_webhook(hook.id, PauseReason.FAILURES, T0 + 5)
    paused = await read(store, hook.id)
    assert paused is not None
    assert (paused.url, paused.secret, paused.failed_deliveries) == (
        "https://new.example/hook",
        "whsec_new",
        2,
    )
    assert (paused.status, paused.paused_reason, paused.paused_at) == (
        EndpointStatus.PAUSED,
        PauseReason.FAILURES,
        T0 + 5,
    )
    async with store.write() as tx:
        await tx.enable_webhook(hook.id)
    enabled = await read(store, hook.id)
    assert enabled is not None
    assert (enabled.status, enabled.paused_reason, enabled.paused_at) == (
        EndpointStatus.ACTIVE,
        None,
        None,
    )
    assert enabled.failed_deliveries == 0


async def test_cursors_are_upserted_per_identity(store: Store, world: World) -> None:
    hook = await add(store, endpoint(world.org.id))
    bob = identity(world.org.id, "bob@mailpool.test")
    async with store.write() as tx:
        await tx.add_identity(bob)
        assert await tx.webhook_cursors(hook.id) == {}
        await tx.set_webhook_cursors(hook.id, {world.identity.id: 3, bob.id: 0})
    async with store.write() as tx:
        await tx.set_webhook_cursors(hook.id, {world.identity.id: 7})
        await tx.set_webhook_cursors(hook.id, {})
    async with store.read() as tx:
        assert await tx.webhook_cursors(hook.id) == {world.identity.id: 7, bob.id: 0}
        assert await tx.webhook_cursors("whk_other") == {}
    with pytest.raises(REFUSED):
        async with store.write() as tx:
            await tx.set_webhook_cursors(hook.id, {"idn_missing": 1})


async def test_a_rolled_back_cursor_write_leaves_nothing(store: Store, world: World) -> None:
    hook = await add(store, endpoint(world.org.id))

    async def work(tx: Tx) -> None:
        await tx.set_webhook_cursors(hook.id, {world.identity.id: 9})
        await tx.pause_webhook(hook.id, PauseReason.GONE, T0)

    await abandoned_write(store, work)
    async with store.read() as tx:
        assert await tx.webhook_cursors(hook.id) == {}
    assert (await read(store, hook.id)).status is EndpointStatus.ACTIVE  # type: ignore[union-attr]


async def test_a_claim_leases_active_free_endpoints_only(store: Store, world: World) -> None:
    other = org(2)
    async with store.write() as tx:
        await tx.add_org(other)
    hook = await add(store, endpoint(world.org.id))
    paused = await add(
        store, endpoint(other.id, 2, status=EndpointStatus.PAUSED, paused_reason=PauseReason.GONE)
    )
    assert await claim(store, "rly_a", T0) == [hook.id]
    held = await read(store, hook.id)
    assert held is not None
    assert (held.lease_owner, held.lease_until) == ("rly_a", T0 + LEASE)
    assert await claim(store, "rly_b", T0 + LEASE) == []  # held until the lease runs out
    assert await claim(store, "rly_b", T0 + LEASE + 1) == [hook.id]  # taken over
    assert (await read(store, paused.id)).lease_owner is None  # type: ignore[union-attr]


async def test_renewal_is_the_fence_of_the_lease_holder(store: Store, world: World) -> None:
    hook = await add(store, endpoint(world.org.id))
    await claim(store, "rly_a", T0)
    async with store.write() as tx:
        renewed = await tx.renew_webhook_lease(hook.id, "rly_a", T0 + 2 * LEASE)
        assert renewed is not None
        assert renewed.lease_until == T0 + 2 * LEASE
        assert await tx.renew_webhook_lease(hook.id, "rly_b", T0 + 3 * LEASE) is None
    # A paused endpoint is still renewed (its holder records the event in hand).
    async with store.write() as tx:
        await tx.pause_webhook(hook.id, PauseReason.OPERATOR, T0)
        renewed = await tx.renew_webhook_lease(hook.id, "rly_a", T0 + 2 * LEASE)
        assert renewed is not None
        assert renewed.status is EndpointStatus.PAUSED
    # Taken over once it ran out: the old holder's renewal fails from then on.
    async with store.write() as tx:
        await tx.enable_webhook(hook.id)
    assert await claim(store, "rly_b", T0 + 2 * LEASE + 1) == [hook.id]
    async with store.write() as tx:
        assert await tx.renew_webhook_lease(hook.id, "rly_a", T0 + 9 * LEASE) is None


async def test_release_only_by_the_holder(store: Store, world: World) -> None:
    hook = await add(store, endpoint(world.org.id))
    await claim(store, "rly_a", T0)
    async with store.write() as tx:
        await tx.release_webhook_lease(hook.id, "rly_b")
    assert (await read(store, hook.id)).lease_owner == "rly_a"  # type: ignore[union-attr]
    async with store.write() as tx:
        await tx.release_webhook_lease(hook.id, "rly_a")
    released = await read(store, hook.id)
    assert released is not None
    assert (released.lease_owner, released.lease_until) == (None, None)
    assert await claim(store, "rly_b", T0) == [hook.id]  # free again at once


async def test_racing_claims_lease_an_endpoint_to_one_relay(store: Store, world: World) -> None:
    hook = await add(store, endpoint(world.org.id))
    won = await asyncio.gather(*(claim(store, f"rly_{n}", T0) for n in range(6)))
    assert sorted(w for claimed in won for w in claimed) == [hook.id]
