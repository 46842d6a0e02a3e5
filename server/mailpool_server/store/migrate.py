"""Applies the Alembic migrations; the server runs this at start-up."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

SCRIPT_LOCATION = "mailpool_server.store:migrations"
MIGRATION_LOCK = 0x6D61696C706F6F6C  # "mailpool"


def alembic_config(url: str = "") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade_on(connection: Connection, revision: str = "head") -> None:
    """Bring the schema to `revision` on this connection (idempotent)."""
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """PostgreSQL: bring the schema to `revision`, safe with several replicas starting
    together: one migrates, the others wait and find nothing left to do (Alembic's
    DDL is transactional there). SQLite migrates in SqliteDatabase.migrate."""
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(upgrade_on, revision)
