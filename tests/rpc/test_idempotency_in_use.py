"""Idempotency-Key in use: a duplicate of a request that is still running gives up
after the configured wait (shortened here; 10 s by default)."""

from __future__ import annotations

import grpc
import pytest

from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.clock import FakeClock
from tests.sending import send
from tests.support import Tenant, rich_error


class FirstRequestFailed(Exception):
    pass


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.idempotency_wait_s = 0.2
    return settings


async def test_duplicate_of_a_request_still_running_gets_in_use(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    async with app.store.read() as tx:
        org = await tx.org_by_name(tenant.org)
    assert org is not None

    # A first request with the key that is still running: its claim is uncommitted.
    async def first_request() -> grpc.aio.AioRpcError:
        async with app.store.write() as tx:
            assert await tx.claim_idempotency_key(org.id, "busy", "f", 0, 10**15) is None
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await send(channel, tenant, to="r@example.com", idempotency_key="busy")
            raise FirstRequestFailed(caught.value)  # rolls the claim back: nothing stored

    with pytest.raises(FirstRequestFailed) as failed:
        await first_request()
    error = rich_error(failed.value.args[0])
    assert (error.code, error.reason, error.message) == (
        grpc.StatusCode.ABORTED,
        "IDEMPOTENCY_KEY_IN_USE",
        "Idempotency-Key in use",
    )
    assert (await send(channel, tenant, to="r@example.com", idempotency_key="busy")).accepted
