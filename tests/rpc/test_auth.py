"""Authentication over a real channel: the contract's exact texts and reasons."""

from __future__ import annotations

import grpc
import pytest

from mailpool.v1 import identity_service_pb2 as pb
from mailpool.v1 import identity_service_pb2_grpc as pb_grpc
from mailpool_server.app import App
from tests.support import Tenant, make_tenant, rich_error


async def get_identity(
    channel: grpc.aio.Channel, handle: str, metadata: tuple[tuple[str, str], ...]
) -> pb.GetIdentityResponse:
    stub = pb_grpc.IdentityServiceStub(channel)
    return await stub.GetIdentity(pb.GetIdentityRequest(identity=handle), metadata=metadata)


@pytest.mark.parametrize(
    ("metadata", "message", "reason"),
    [
        ((), "missing api key", "API_KEY_MISSING"),
        ((("authorization", "Bearer pk_nope"),), "invalid api key format", "API_KEY_MALFORMED"),
        (
            (("authorization", "Bearer sk_live_" + "0" * 40),),
            "invalid api key",
            "API_KEY_INVALID",
        ),
    ],
)
async def test_unauthenticated(
    channel: grpc.aio.Channel,
    tenant: Tenant,
    metadata: tuple[tuple[str, str], ...],
    message: str,
    reason: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get_identity(channel, tenant.handle, metadata)
    error = rich_error(caught.value)
    assert (error.code, error.message, error.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        message,
        reason,
    )
    assert caught.value.details() == message


async def test_revoked_key_stops_at_once(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    assert (await get_identity(channel, tenant.handle, tenant.metadata)).identity.handle
    await app.admin.revoke_key(tenant.org, tenant.key[:16])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get_identity(channel, tenant.handle, tenant.metadata)
    assert rich_error(caught.value).reason == "API_KEY_INVALID"


async def test_key_of_another_org_sees_not_found(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    other = await make_tenant(app, "globex", "hank.globex@mailpool.local")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get_identity(channel, tenant.handle, other.metadata)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.message == "identity not found in org"
    assert error.reason == "IDENTITY_NOT_FOUND"
    assert error.metadata == {"handle": tenant.handle}


async def test_unknown_handle_is_not_found(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get_identity(channel, "nobody@mailpool.local", tenant.metadata)
    assert rich_error(caught.value).reason == "IDENTITY_NOT_FOUND"
