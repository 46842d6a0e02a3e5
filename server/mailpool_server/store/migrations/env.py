"""Alembic environment. Migrations run only on a connection handed over by
store/migrate.py (the asyncio connection-sharing recipe): every mailpool command
migrates at start-up, so there is no separate `alembic upgrade` path to keep working."""

from __future__ import annotations

from alembic import context

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
if connection is None:
    raise RuntimeError("mailpool migrates its database itself at start-up (store/migrate.py)")
_run(connection)
