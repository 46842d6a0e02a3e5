"""Webhook endpoints, their leases and the relay's cursors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select, update

from mailpool_server.service.webhook_models import EndpointStatus, PauseReason, WebhookEndpoint
from mailpool_server.store.base import TxBase, table
from mailpool_server.store.tables import WebhookCursorRow, WebhookEndpointRow

E = WebhookEndpointRow
# Rows are read through Core (plain rows, no identity map), so a row read after an
# UPDATE in the same transaction is always what the database holds.
_ENDPOINTS = table(WebhookEndpointRow)


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        org_id=row.org_id,
        url=row.url,
        secret=row.secret,
        status=EndpointStatus(row.status),
        created_at=row.created_at,
        paused_reason=PauseReason(row.paused_reason) if row.paused_reason else None,
        paused_at=row.paused_at,
        failed_deliveries=row.failed_deliveries,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
    )


class WebhookRepoSql(TxBase):
    async def add_webhook(self, endpoint: WebhookEndpoint) -> None:
        self.session.add(
            WebhookEndpointRow(
                id=endpoint.id,
                org_id=endpoint.org_id,
                url=endpoint.url,
                secret=endpoint.secret,
                status=endpoint.status.value,
                paused_reason=endpoint.paused_reason,
                paused_at=endpoint.paused_at,
                failed_deliveries=endpoint.failed_deliveries,
                created_at=endpoint.created_at,
                lease_owner=endpoint.lease_owner,
                lease_until=endpoint.lease_until,
            )
        )
        await self.session.flush()

    async def _one(self, *where: object) -> WebhookEndpoint | None:
        row = (await self.session.execute(select(_ENDPOINTS).where(*where))).first()  # type: ignore[arg-type]
        return None if row is None else _endpoint(row)

    async def webhook_of_org(self, org_id: str) -> WebhookEndpoint | None:
        return await self._one(E.org_id == org_id)

    async def webhook_by_id(self, endpoint_id: str) -> WebhookEndpoint | None:
        return await self._one(E.id == endpoint_id)

    async def _set(self, endpoint_id: str, **values: object) -> None:
        await self.session.execute(update(E).where(E.id == endpoint_id).values(**values))

    async def set_webhook_url(self, endpoint_id: str, url: str) -> None:
        await self._set(endpoint_id, url=url)

    async def set_webhook_secret(self, endpoint_id: str, secret: str) -> None:
        await self._set(endpoint_id, secret=secret)

    async def pause_webhook(self, endpoint_id: str, reason: PauseReason, at: int) -> None:
        await self._set(
            endpoint_id,
            status=EndpointStatus.PAUSED.value,
            paused_reason=reason.value,
            paused_at=at,
        )

    async def enable_webhook(self, endpoint_id: str) -> None:
        await self._set(
            endpoint_id,
            status=EndpointStatus.ACTIVE.value,
            paused_reason=None,
            paused_at=None,
            failed_deliveries=0,
        )

    async def set_webhook_failures(self, endpoint_id: str, failures: int) -> None:
        await self._set(endpoint_id, failed_deliveries=failures)

    async def webhook_cursors(self, endpoint_id: str) -> dict[str, int]:
        c = WebhookCursorRow
        rows = await self.session.execute(
            select(c.identity_id, c.seq).where(c.endpoint_id == endpoint_id)
        )
        return {identity_id: seq for identity_id, seq in rows}

    async def set_webhook_cursors(self, endpoint_id: str, cursors: dict[str, int]) -> None:
        if not cursors:
            return
        statement = self.insert(WebhookCursorRow).values(
            [
                {"endpoint_id": endpoint_id, "identity_id": identity_id, "seq": seq}
                for identity_id, seq in cursors.items()
            ]
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["endpoint_id", "identity_id"],
                set_={"seq": statement.excluded.seq},
            )
        )

    async def claim_webhooks(
        self, owner: str, now: int, lease_until: int, limit: int
    ) -> list[WebhookEndpoint]:
        free = and_(
            E.status == EndpointStatus.ACTIVE.value,
            or_(E.lease_owner.is_(None), E.lease_until.is_(None), E.lease_until < now),
        )
        # PostgreSQL: a row another relay is claiming (or renewing) right now is
        # skipped, not waited for. SQLite: the write lock makes the claim exclusive.
        ids = list(
            await self.session.scalars(
                select(E.id)
                .where(free)
                .order_by(E.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        await self.session.execute(
            update(E).where(E.id.in_(ids), free).values(lease_owner=owner, lease_until=lease_until)
        )
        rows = await self.session.execute(
            select(_ENDPOINTS).where(E.id.in_(ids), E.lease_owner == owner).order_by(E.id)
        )
        return [_endpoint(row) for row in rows]

    async def renew_webhook_lease(
        self, endpoint_id: str, owner: str, lease_until: int
    ) -> WebhookEndpoint | None:
        # The conditional UPDATE takes the row lock (held to commit) before reading it
        # back, so no claim or admin change can slip between the check and the write.
        row = (
            await self.session.execute(
                update(_ENDPOINTS)
                .where(_ENDPOINTS.c.id == endpoint_id, _ENDPOINTS.c.lease_owner == owner)
                .values(lease_until=lease_until)
                .returning(*_ENDPOINTS.c)
            )
        ).first()
        return None if row is None else _endpoint(row)

    async def release_webhook_lease(self, endpoint_id: str, owner: str) -> None:
        await self.session.execute(
            update(E)
            .where(E.id == endpoint_id, E.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )
