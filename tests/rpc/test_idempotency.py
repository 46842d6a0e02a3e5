"""Idempotency-Key semantics of Send (CONTRACT 3.3) over a real channel."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from sqlalchemy import func, select

from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock
from mailpool_server.store.tables import PendingSendRow
from tests.sending import send, send_call
from tests.support import Tenant, make_tenant, rich_error


async def pending_count(app: App) -> int:
    async with app.store.read() as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(PendingSendRow)) or 0)


async def test_twenty_concurrent_duplicates_execute_once(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    calls = [
        send_call(channel, tenant, to="once@example.com", idempotency_key="lead-42:step-3")
        for _ in range(20)
    ]
    answers = await asyncio.gather(*calls)
    assert await pending_count(app) == 1
    bodies = {response.SerializeToString(deterministic=True) for response, _ in answers}
    assert len(bodies) == 1
    replayed = [headers.get("idempotent-replayed") for _, headers in answers]
    assert replayed.count("true") == 19
    assert replayed.count(None) == 1


async def test_same_key_same_request_replays_with_header(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    first, first_headers = await send_call(
        channel, tenant, to="r@example.com", labels=["a", "b"], idempotency_key="k1"
    )
    again, headers = await send_call(
        channel, tenant, to="r@example.com", labels=["a", "b"], idempotency_key="k1"
    )
    assert "idempotent-replayed" not in first_headers
    assert headers["idempotent-replayed"] == "true"
    assert again == first
    assert await pending_count(app) == 1


async def test_same_key_different_body_is_aborted(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    await send(channel, tenant, to="r@example.com", idempotency_key="k2")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(channel, tenant, to="r@example.com", text="changed", idempotency_key="k2")
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.ABORTED
    assert error.reason == "IDEMPOTENCY_KEY_REUSED"
    assert error.message == "Idempotency-Key reused with a different body"


async def test_keys_are_scoped_to_the_org(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    other = await make_tenant(app, "globex", "hank.globex@mailpool.local")
    await send(channel, tenant, to="r@example.com", idempotency_key="shared")
    _, headers = await send_call(channel, other, to="r@example.com", idempotency_key="shared")
    assert "idempotent-replayed" not in headers
    assert await pending_count(app) == 2


async def test_a_key_lives_24_hours(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    await send(channel, tenant, to="r@example.com", idempotency_key="daily")
    clock.advance(hours=23, minutes=59)
    _, headers = await send_call(channel, tenant, to="r@example.com", idempotency_key="daily")
    assert headers["idempotent-replayed"] == "true"
    clock.advance(minutes=1)
    response, headers = await send_call(
        channel, tenant, to="other@example.com", idempotency_key="daily"
    )
    assert "idempotent-replayed" not in headers
    assert response.accepted == 1
    assert await pending_count(app) == 2


async def test_rejections_are_not_stored(
    app: App, channel: grpc.aio.Channel, clock: FakeClock
) -> None:
    tenant = await make_tenant(app, "tiny", "tiny@mailpool.local", warmup_stage=0)
    for n in range(15):
        await send(channel, tenant, to=f"w{n}@example.com")
    with pytest.raises(grpc.aio.AioRpcError):
        await send(channel, tenant, to="later@example.com", idempotency_key="retry-me")
    clock.advance(days=1)
    response, headers = await send_call(
        channel, tenant, to="later@example.com", idempotency_key="retry-me"
    )
    assert response.accepted == 1
    assert "idempotent-replayed" not in headers


@pytest.mark.parametrize("key", ["", "has space", "tab\there", "é", "x" * 256])
async def test_malformed_keys(channel: grpc.aio.Channel, tenant: Tenant, key: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(channel, tenant, to="r@example.com", idempotency_key=key)
    error = rich_error(caught.value)
    assert (error.code, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "IDEMPOTENCY_KEY_MALFORMED",
    )
    assert error.message == "malformed Idempotency-Key"


async def test_longest_and_oddest_valid_keys(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    for key in ("x" * 255, "!~:/#", "lead-42:step-3"):
        assert (await send(channel, tenant, to="r@example.com", idempotency_key=key)).accepted
