"""Operator commands behind `mailpool admin webhook …`: one endpoint per org."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from mailpool_server.service.clock import Clock, now_ms
from mailpool_server.service.errors import AdminError
from mailpool_server.service.ids import new_id
from mailpool_server.service.models import Org
from mailpool_server.service.ports import Store, Tx
from mailpool_server.service.webhook_models import EndpointStatus, PauseReason, WebhookEndpoint
from mailpool_server.service.webhooks import new_secret

MAX_URL = 2048


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_http_loopback: bool) -> str:
    """An https:// URL; http:// only for a loopback host, and only when allowed (tests
    and local development)."""
    shown = url if len(url) <= 200 else url[:200] + "…"
    if len(url) > MAX_URL:
        raise AdminError(f"--url is longer than {MAX_URL} characters")
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        raise AdminError(f"--url {shown!r} has a port that is not a number (1-65535)") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise AdminError(f"--url must be an https:// URL, not {shown!r}")
    if parts.username is not None or parts.password is not None:
        raise AdminError("--url must not carry a user or password: the signature authenticates")
    if parts.scheme == "http":
        if not _loopback(parts.hostname):
            raise AdminError(
                f"--url must be https:// (plain http:// is only for a loopback host), not {shown!r}"
            )
        if not allow_http_loopback:
            raise AdminError(
                "plain http:// is for tests and local development only: pass "
                "--allow-http-loopback (or MAILPOOL_WEBHOOK_ALLOW_HTTP_LOOPBACK=1), or use https://"
            )
    return url.strip()


@dataclass(frozen=True)
class CursorView:
    handle: str
    cursor: int
    head: int


@dataclass(frozen=True)
class WebhookView:
    """An endpoint as `show` prints it: never the secret."""

    org: Org
    endpoint: WebhookEndpoint
    cursors: list[CursorView]


class WebhookAdmin:
    def __init__(self, store: Store, clock: Clock, *, allow_http_loopback: bool = False) -> None:
        self._store = store
        self._clock = clock
        self._allow_http_loopback = allow_http_loopback

    async def _org(self, tx: Tx, name: str) -> Org:
        org = await tx.org_by_name(name)
        if org is None:
            raise AdminError(f"no org named {name!r}")
        return org

    async def _endpoint(self, tx: Tx, org_name: str) -> tuple[Org, WebhookEndpoint]:
        org = await self._org(tx, org_name)
        endpoint = await tx.webhook_of_org(org.id)
        if endpoint is None:
            raise AdminError(
                f"org {org.name!r} has no webhook endpoint; "
                "create one with mailpool admin webhook set --org … --url …"
            )
        return org, endpoint

    async def set(self, org_name: str, url: str) -> tuple[WebhookEndpoint, str | None]:
        """Create the org's endpoint (the secret is returned, the one time it is
        shown) or point the existing one at a new URL (secret None: unchanged)."""
        url = check_url(url, allow_http_loopback=self._allow_http_loopback)
        async with self._store.write() as tx:
            org = await self._org(tx, org_name)
            existing = await tx.webhook_of_org(org.id)
            if existing is not None:
                await tx.set_webhook_url(existing.id, url)
                endpoint = await tx.webhook_by_id(existing.id)
                assert endpoint is not None
                return endpoint, None
            secret = new_secret()
            endpoint = WebhookEndpoint(
                id=new_id("whk"),
                org_id=org.id,
                url=url,
                secret=secret,
                status=EndpointStatus.ACTIVE,
                created_at=now_ms(self._clock),
            )
            await tx.add_webhook(endpoint)
            # It pushes what happens from now on: the past is in the events API.
            await tx.set_webhook_cursors(endpoint.id, await self._heads(tx, org))
        return endpoint, secret

    async def _heads(self, tx: Tx, org: Org) -> dict[str, int]:
        identities = await tx.identities_of(org.id, "", 1_000_000)
        return await tx.head_seqs([i.id for i in identities])

    async def rotate_secret(self, org_name: str) -> str:
        """A new secret, effective at once: the old one signs nothing more."""
        secret = new_secret()
        async with self._store.write() as tx:
            _, endpoint = await self._endpoint(tx, org_name)
            await tx.set_webhook_secret(endpoint.id, secret)
        return secret

    async def enable(self, org_name: str, *, from_now: bool = False) -> WebhookEndpoint:
        """Active again. Delivery resumes at the cursors (what arrived while paused is
        sent, in order), or with from_now at the current heads (skipped)."""
        async with self._store.write() as tx:
            org, endpoint = await self._endpoint(tx, org_name)
            if endpoint.status is EndpointStatus.ACTIVE and not from_now:
                raise AdminError(f"the webhook of {org.name!r} is already active")
            await tx.enable_webhook(endpoint.id)
            if from_now:
                await tx.set_webhook_cursors(endpoint.id, await self._heads(tx, org))
            enabled = await tx.webhook_by_id(endpoint.id)
        assert enabled is not None
        return enabled

    async def disable(self, org_name: str) -> WebhookEndpoint:
        """Paused by the operator: nothing more is sent until enable."""
        async with self._store.write() as tx:
            org, endpoint = await self._endpoint(tx, org_name)
            if endpoint.status is EndpointStatus.PAUSED:
                reason = endpoint.paused_reason.value if endpoint.paused_reason else "?"
                raise AdminError(f"the webhook of {org.name!r} is already paused ({reason})")
            await tx.pause_webhook(endpoint.id, PauseReason.OPERATOR, now_ms(self._clock))
            paused = await tx.webhook_by_id(endpoint.id)
        assert paused is not None
        return paused

    async def show(self, org_name: str) -> WebhookView:
        async with self._store.read() as tx:
            org, endpoint = await self._endpoint(tx, org_name)
            identities = await tx.identities_of(org.id, "", 1_000_000)
            heads = await tx.head_seqs([i.id for i in identities])
            cursors = await tx.webhook_cursors(endpoint.id)
        return WebhookView(
            org,
            endpoint,
            [CursorView(i.handle, cursors.get(i.id, 0), heads.get(i.id, 0)) for i in identities],
        )
