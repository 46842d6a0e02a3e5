"""Every endpoint and every error row of the seed document, as exact HTTP exchanges."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, now_ms, utc_day
from mailpool_server.service.models import IdentityState
from mailpool_server.store.tables import MailboxRow
from tests.rest import openapi_check
from tests.rest.golden import UPDATE, load, normalize, save, scenarios
from tests.sending import send
from tests.support import Tenant, make_tenant


async def _setup(app: App, tenant: Tenant, clock: FakeClock, step: str) -> None:
    """Named states a scenario can start from."""
    identity = (await app.admin.show_identity(tenant.handle)).identity
    day = utc_day(now_ms(clock))
    if step == "cap_used_up":
        async with app.store.write() as tx:
            assert await tx.add_identity_usage(identity.id, day, 150, 150)
    elif step == "mailboxes_capped":
        async with app.store.write() as tx:
            for mailbox in await tx.mailboxes_of([identity.id]):
                assert await tx.add_mailbox_usage(mailbox.id, day, 50, 50)
    elif step == "mailboxes_unhealthy":
        async with app.store.write() as tx:
            await tx.session.execute(
                update(MailboxRow).where(MailboxRow.identity_id == identity.id).values(health=10)
            )
    elif step in ("provisioning", "suspended"):
        await app.admin.set_identity_state(tenant.handle, IdentityState(step))
    elif step == "blocked_recipient":
        async with app.store.write() as tx:
            await tx.add_do_not_contact(identity.org_id, "x@blocked.example", "hard_bounce", 0)
    else:
        raise AssertionError(f"unknown setup step {step!r}")


def _fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template
    if isinstance(template, list):
        return [_fill(t, values) for t in template]
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template


def _first_conv(body: Any) -> str | None:
    text = json.dumps(body)
    start = text.find('"conv_')
    return text[start + 1 : start + 22] if start >= 0 else None


def _first_pending(body: Any) -> str | None:
    text = json.dumps(body)
    start = text.find('"psn_')
    return text[start + 1 : start + 21] if start >= 0 else None


@pytest.mark.parametrize("name", scenarios())
async def test_golden(
    name: str, app: App, http: httpx.AsyncClient, channel: Any, clock: FakeClock
) -> None:
    tenant = await make_tenant(app, "acme", "alice.acme@mailpool.local")
    other = await make_tenant(app, "globex", "hank.globex@mailpool.local")
    other_conv = (await send(channel, other, to="z@example.com")).results[0].conv_id
    scenario = load(name)
    for step in scenario.get("setup", []):
        await _setup(app, tenant, clock, step)
    values = {"key": tenant.key, "handle": tenant.handle, "otherConv": other_conv}
    for exchange in scenario["exchanges"]:
        request = _fill(exchange["request"], values)
        headers = dict(request.get("headers", {}))
        content = request.get("raw")
        if content is None and "json" in request:
            content = json.dumps(request["json"])
            headers.setdefault("Content-Type", "application/json")
        response = await http.request(
            request["method"], request["path"], headers=headers, content=content
        )
        body = response.json()
        openapi_check.check(request["method"], request["path"], response.status_code, body)
        if (conv := _first_conv(body)) and "conv" not in values:
            values["conv"] = conv
        if (pending := _first_pending(body)) and "pending" not in values:
            values["pending"] = pending
        got: dict[str, Any] = {"status": response.status_code, "body": normalize(body)}
        if response.headers.get("idempotent-replayed"):
            got["headers"] = {"Idempotent-Replayed": response.headers["idempotent-replayed"]}
        if UPDATE:
            exchange["response"] = got
        else:
            assert got == exchange["response"], f"{name}: {request['method']} {request['path']}"
    if UPDATE:
        save(name, scenario)
