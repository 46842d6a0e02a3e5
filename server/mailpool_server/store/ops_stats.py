"""What the operator's gauges show about the queue and the mailboxes (metrics.py reads it
every few seconds): a cold path, on SQLAlchemy."""

from __future__ import annotations

from sqlalchemy import func, select

from mailpool_server.metrics import QueueSnapshot
from mailpool_server.service.models import PendingStatus
from mailpool_server.service.policy import HEALTH_EXCLUDE_BELOW
from mailpool_server.store.engine import Database
from mailpool_server.store.tables import MailboxRow, PendingSendRow


async def queue_snapshot(database: Database, now_ms: int) -> QueueSnapshot:
    """Rows by state (every state named, 0 when none), how long the oldest due queued
    row has waited, and how many mailboxes are below the health threshold."""
    p = PendingSendRow
    async with database.unit(write=False) as unit:
        session = unit.session()
        by_state = dict(
            (await session.execute(select(p.status, func.count()).group_by(p.status))).all()
        )
        oldest = await session.scalar(
            select(func.min(p.dispatch_at)).where(
                p.status == PendingStatus.QUEUED.value, p.dispatch_at <= now_ms
            )
        )
        mailboxes = await session.scalar(select(func.count()).select_from(MailboxRow))
        unhealthy = await session.scalar(
            select(func.count())
            .select_from(MailboxRow)
            .where(MailboxRow.health < HEALTH_EXCLUDE_BELOW)
        )
    rows = {state.value: int(by_state.get(state.value, 0)) for state in PendingStatus}
    return QueueSnapshot(
        rows_by_state=rows,
        oldest_due_age_s=max(0.0, (now_ms - oldest) / 1000) if oldest is not None else 0.0,
        mailboxes=int(mailboxes or 0),
        mailboxes_unhealthy=int(unhealthy or 0),
    )
