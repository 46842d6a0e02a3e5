"""Alembic environment. Migrations run on a connection handed over by store/migrate.py
(the asyncio connection-sharing recipe), or on a URL for the alembic command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mailpool_server.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or ""
    engine = create_engine(url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg"))
    with engine.begin() as conn:
        _run(conn)
