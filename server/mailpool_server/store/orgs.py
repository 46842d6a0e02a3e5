"""Orgs and API keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select, update

from mailpool_server.service.models import ApiKeyInfo, Org
from mailpool_server.store.base import TxBase
from mailpool_server.store.driver import Sql
from mailpool_server.store.tables import ApiKeyRow, OrgRow


def _key(row: ApiKeyRow | Row[Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        org_id=row.org_id,
        prefix=row.prefix,
        key_hash=row.key_hash,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
    )


# Every authenticated call runs this.
_API_KEY_BY_HASH = Sql(
    "SELECT id, org_id, prefix, key_hash, created_at, revoked_at, expires_at"
    " FROM api_keys WHERE key_hash = :key_hash"
)


class OrgRepoSql(TxBase):
    async def add_org(self, org: Org) -> None:
        self.session.add(OrgRow(id=org.id, name=org.name, created_at=org.created_at))
        await self.session.flush()

    async def org_by_name(self, name: str) -> Org | None:
        """Regardless of case, as the unique index on lower(name) compares (0002)."""
        row = await self.session.scalar(
            select(OrgRow).where(func.lower(OrgRow.name) == func.lower(name))
        )
        return None if row is None else Org(id=row.id, name=row.name, created_at=row.created_at)

    async def add_api_key(self, key: ApiKeyInfo) -> None:
        self.session.add(
            ApiKeyRow(
                id=key.id,
                org_id=key.org_id,
                prefix=key.prefix,
                key_hash=key.key_hash,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
                expires_at=key.expires_at,
            )
        )
        await self.session.flush()

    async def api_key_by_hash(self, key_hash: str) -> ApiKeyInfo | None:
        row = await self.driver.one(_API_KEY_BY_HASH, {"key_hash": key_hash})
        return None if row is None else ApiKeyInfo(*row)

    async def api_keys_of(self, org_id: str) -> list[ApiKeyInfo]:
        rows = await self.session.scalars(
            select(ApiKeyRow)
            .where(ApiKeyRow.org_id == org_id)
            .order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        )
        return [_key(row) for row in rows]

    async def revoke_api_key(self, key_id: str, at: int) -> None:
        await self.session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
