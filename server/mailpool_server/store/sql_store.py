"""The SQL implementation of service.ports.Store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mailpool_server.store.conversations import ConversationRepoSql
from mailpool_server.store.delivery import DeliveryRepoSql
from mailpool_server.store.engine import Database
from mailpool_server.store.events import EventRepoSql
from mailpool_server.store.identities import IdentityRepoSql
from mailpool_server.store.orgs import OrgRepoSql
from mailpool_server.store.outbound import OutboundRepoSql
from mailpool_server.store.sends import SendRepoSql
from mailpool_server.store.webhooks import WebhookRepoSql


class SqlTx(
    OutboundRepoSql,
    OrgRepoSql,
    IdentityRepoSql,
    SendRepoSql,
    ConversationRepoSql,
    EventRepoSql,
    DeliveryRepoSql,
    WebhookRepoSql,
):
    """Every repository on one session, i.e. one transaction."""


class SqlStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._dialect = database.dialect

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTx]:
        async with self.database.unit(write=False) as unit:
            yield SqlTx(unit, dialect=self._dialect)

    @asynccontextmanager
    async def write(self, *, lock_timeout_s: float | None = None) -> AsyncIterator[SqlTx]:
        async with self.database.unit(write=True, lock_timeout_s=lock_timeout_s) as unit:
            yield SqlTx(unit, dialect=self._dialect)

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[SqlTx]:
        async with self.database.lookup() as unit:
            yield SqlTx(unit, dialect=self._dialect)
