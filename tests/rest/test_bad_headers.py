"""Authorization headers a careless client sends: too long, or twice. The shim and the
gRPC server agree on each (the server decides; the shim only forwards)."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Tenant


@pytest.mark.parametrize("size", [2_000, 20_000, 100_000])
async def test_an_oversized_authorization_header_is_a_401(
    http: httpx.AsyncClient, tenant: Tenant, size: int
) -> None:
    response = await http.get(
        f"/v1/identities/{tenant.handle}/conversations",
        headers={"Authorization": "Bearer sk_live_" + "a" * size},
    )
    assert response.status_code in (401, 431), response.text
    if response.status_code == 401:
        assert response.json() == {"error": "invalid api key"}


async def test_two_authorization_headers_are_refused_as_over_grpc(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = httpx.Headers([("Authorization", f"Bearer {tenant.key}")] * 2)
    response = await http.get(f"/v1/identities/{tenant.handle}/conversations", headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid api key format",
        "details": {"authorization": "given 2 times; give one"},
    }
