"""`mailpool admin webhook …` rules, on the in-memory store: URLs, one-line refusals,
the secret shown once and never again."""

from __future__ import annotations

import pytest

from mailpool_server.service.admin import Admin
from mailpool_server.service.clock import FakeClock
from mailpool_server.service.errors import AdminError
from mailpool_server.service.policy import Tier
from mailpool_server.service.webhook_admin import WebhookAdmin, check_url
from mailpool_server.service.webhook_models import EndpointStatus, PauseReason
from tests.memory_store import MemoryStore


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example/in", "https://hooks.example:8443/a?b=c", "https://[2001:db8::1]/x"],
)
def test_https_urls_are_taken(url: str) -> None:
    assert check_url(url, allow_http_loopback=False) == url


@pytest.mark.parametrize(
    ("url", "allow", "says"),
    [
        ("http://127.0.0.1:9/x", False, "--allow-http-loopback"),
        ("http://hooks.example/x", True, "only for a loopback host"),
        ("http://10.0.0.1/x", True, "only for a loopback host"),
        ("ftp://hooks.example/x", True, "must be an https:// URL"),
        ("hooks.example/x", True, "must be an https:// URL"),
        ("https://user:pw@hooks.example/x", True, "user or password"),
        ("https://hooks.example:99999/x", True, "port"),
        ("https://" + "a" * 3000 + ".example/", True, "longer than"),
    ],
)
def test_other_urls_are_refused_in_one_line(url: str, allow: bool, says: str) -> None:
    with pytest.raises(AdminError) as refused:
        check_url(url, allow_http_loopback=allow)
    assert says in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8/x", "http://localhost/x", "http://[::1]/x"])
def test_http_loopback_when_allowed(url: str) -> None:
    assert check_url(url, allow_http_loopback=True) == url


async def test_set_rotate_disable_enable_show() -> None:
    store, clock = MemoryStore(), FakeClock()
    admin = Admin(store, clock, mailbox_domain="mb.example")
    await admin.create_org("acme")
    await admin.create_identity("acme", "a@acme.example", Tier.STARTER)
    hooks = WebhookAdmin(store, clock)
    with pytest.raises(AdminError, match="has no webhook endpoint"):
        await hooks.show("acme")
    with pytest.raises(AdminError, match="no org named"):
        await hooks.set("nope", "https://h.example/")
    endpoint, secret = await hooks.set("ACME", "https://h.example/1")
    assert secret is not None and secret.startswith("whsec_") and len(secret) == 54
    # Set again: a new URL, the same secret, which is not shown again.
    moved, again = await hooks.set("acme", "https://h.example/2")
    assert (moved.url, moved.secret, again) == ("https://h.example/2", secret, None)
    rotated = await hooks.rotate_secret("acme")
    assert rotated != secret
    view = await hooks.show("acme")
    assert view.endpoint.secret == rotated  # the service has it; the CLI never prints it
    assert [(c.handle, c.cursor, c.head) for c in view.cursors] == [("a@acme.example", 0, 0)]
    paused = await hooks.disable("acme")
    assert (paused.status, paused.paused_reason) == (EndpointStatus.PAUSED, PauseReason.OPERATOR)
    with pytest.raises(AdminError, match="already paused"):
        await hooks.disable("acme")
    assert (await hooks.enable("acme")).status is EndpointStatus.ACTIVE
    with pytest.raises(AdminError, match="already active"):
        await hooks.enable("acme")
    assert endpoint.id == view.endpoint.id
