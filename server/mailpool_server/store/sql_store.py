"""The SQL implementation of service.ports.Store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType

from mailpool_server.store.base import Unit
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

    def write(self, *, lock_timeout_s: float | None = None) -> AbstractAsyncContextManager[SqlTx]:
        unit = self.database.unit(write=True, lock_timeout_s=lock_timeout_s)
        return _TxBlock(unit, self._dialect)

    def lookup(self) -> AbstractAsyncContextManager[SqlTx]:
        return _TxBlock(self.database.lookup(), self._dialect)


class _TxBlock:
    """A database unit's block with the repositories on it. A class, as the units on
    the send path are (sqlite_db.py): a generator-based block costs ~3 µs more."""

    __slots__ = ("_dialect", "_unit")

    def __init__(self, unit: AbstractAsyncContextManager[Unit], dialect: str) -> None:
        self._unit = unit
        self._dialect = dialect

    async def __aenter__(self) -> SqlTx:
        return SqlTx(await self._unit.__aenter__(), dialect=self._dialect)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await self._unit.__aexit__(exc_type, exc, traceback)
