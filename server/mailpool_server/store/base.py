"""The transaction object every repository mixin works on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


class TxBase:
    def __init__(self, session: AsyncSession, *, dialect: str) -> None:
        self.session = session
        self.dialect = dialect

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL alike)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
