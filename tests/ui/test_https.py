"""Over HTTPS the dashboard's cookies are Secure, and its own https origin passes the
Origin check (the shim inside `mailpool serve` with --tls-cert/--tls-key)."""

from __future__ import annotations

import re

import httpx
import pytest

from mailpool_server.app import App
from mailpool_server.config import Settings
from tests.ops.certs import Pki, make_pki
from tests.ops.test_tls import http_context
from tests.support import make_tenant


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def settings(settings: Settings, pki: Pki) -> Settings:
    settings.http_port = 0
    settings.tls_cert = pki.server.cert
    settings.tls_key = pki.server.key
    settings.tls_ca = pki.ca
    return settings


def _flags(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


async def test_over_https_the_cookies_are_secure(app: App, pki: Pki) -> None:
    tenant = await make_tenant(app, "acme", "alice.acme@mailpool.local")
    assert app.http is not None
    origin = f"https://localhost:{app.http.port}"
    async with httpx.AsyncClient(base_url=origin, verify=http_context(pki), timeout=30) as client:
        form = await client.get("/ui/signin")
        assert {"secure", "httponly", "samesite=strict"} <= _flags(form.headers["set-cookie"])
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        answer = await client.post(
            "/ui/signin",
            data={"csrf": token.group(1), "key": tenant.key},
            headers={"Origin": origin},
        )
        assert answer.status_code == 303
        [session] = [
            c for c in answer.headers.get_list("set-cookie") if c.startswith("mailpool_ui=")
        ]
        assert {"secure", "httponly", "samesite=strict", "path=/ui"} <= _flags(session)
        page = await client.get("/ui/")
        assert page.status_code == 200 and tenant.handle in page.text
