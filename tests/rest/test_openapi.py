"""The published OpenAPI document: served, committed and generated are one."""

from __future__ import annotations

import json

import httpx

from mailpool_server.rest.openapi import document
from tests.rest.openapi_check import DOCUMENT


async def test_served_document_is_the_committed_one(http: httpx.AsyncClient) -> None:
    served = (await http.get("/openapi.json")).json()
    assert served == json.loads(DOCUMENT.read_text()) == document(), (
        "openapi.json is stale: regenerate it with `make openapi`"
    )
    assert served["openapi"] == "3.1.0"
    assert set(served["paths"]) == {
        "/v1/identities/{handle}/send",
        "/v1/identities/{handle}/conversations",
        "/v1/identities/{handle}/conversations/{convId}",
        "/v1/identities/{handle}/conversations/{convId}/archive",
        "/v1/identities/{handle}/conversations/{convId}/unarchive",
        "/v1/identities/{handle}/conversations/{convId}/labels",
        "/v1/identities/{handle}/conversations/{convId}/labels/remove",
        "/v1/identities/{handle}/sends/{pendingId}/cancel",
        "/v1/identities/{handle}/labels/stats",
        "/v1/identities/{handle}/usage",
        "/v1/identities/{handle}/events",
    }
