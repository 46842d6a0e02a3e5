"""Tenants for use-case tests, made through the operator use case."""

from __future__ import annotations

from dataclasses import dataclass

from mailpool_server.service.admin import Admin
from mailpool_server.service.models import Identity, IdentityState, Mailbox
from mailpool_server.service.policy import MAX_WARMUP_STAGE, Tier


@dataclass(frozen=True)
class Tenant:
    """An org and one of its identities with the tier's mailboxes, oldest first."""

    org_id: str
    identity: Identity
    mailboxes: list[Mailbox]

    @property
    def handle(self) -> str:
        return self.identity.handle


async def make_tenant(
    admin: Admin,
    org: str,
    handle: str,
    *,
    tier: Tier = Tier.STARTER,
    warmup_stage: int = MAX_WARMUP_STAGE,
    state: IdentityState = IdentityState.ACTIVE,
    new_org: bool = True,
) -> Tenant:
    """Made through the operator use case, as `mailpool admin` makes them."""
    if new_org:
        await admin.create_org(org)
    today = await admin.create_identity(org, handle, tier, state, warmup_stage)
    return Tenant(today.identity.org_id, today.identity, [m.mailbox for m in today.mailboxes])
