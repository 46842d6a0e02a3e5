"""Queued sends on their way out: claims with leases, outcomes, mailbox health."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select, update

from mailpool_server.service.models import Conversation, Mailbox, PendingStatus
from mailpool_server.service.outbound import OutgoingMessage
from mailpool_server.service.ports import CancelledSend, MailboxDay, PendingRef
from mailpool_server.store.base import TxBase
from mailpool_server.store.codec import load_json
from mailpool_server.store.conversations import CONVERSATION_SELECT, conversation_of
from mailpool_server.store.identities import mailbox_from_row
from mailpool_server.store.tables import (
    ContactRow,
    ConversationRow,
    IdentityRow,
    MailboxRow,
    MailboxUsageRow,
    MessageRow,
    PendingSendRow,
)

QUEUED, SENDING, SENT, CANCELLED, FAILED = (
    PendingStatus.QUEUED,
    PendingStatus.SENDING,
    PendingStatus.SENT,
    PendingStatus.CANCELLED,
    PendingStatus.FAILED,
)


class DeliveryRepoSql(TxBase):
    async def claim_due(self, now: int, lease_until: int, limit: int) -> list[OutgoingMessage]:
        """Take up to `limit` rows that are due, or whose previous claim's lease ran out
        (a dispatcher that died), and lease them to the caller."""
        p = PendingSendRow
        due = or_(
            and_(p.status == QUEUED, p.dispatch_at <= now),
            and_(p.status == SENDING, p.lease_until < now),
        )
        # PostgreSQL: rows another dispatcher is claiming right now are skipped, not
        # waited for. SQLite: the write lock already makes the claim exclusive.
        ids = list(
            await self.session.scalars(
                select(p.id)
                .where(due)
                .order_by(p.dispatch_at, p.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        await self.session.execute(
            update(p)
            .where(p.id.in_(ids), due)
            .values(status=SENDING, lease_until=lease_until, attempts=p.attempts + 1)
        )
        rows = await self.session.execute(
            select(p, MessageRow, MailboxRow, IdentityRow.handle)
            .join(MessageRow, MessageRow.id == p.message_id)
            .join(MailboxRow, MailboxRow.id == p.mailbox_id)
            .join(IdentityRow, IdentityRow.id == p.identity_id)
            .where(p.id.in_(ids))
            .order_by(p.dispatch_at, p.id)
        )
        return [
            OutgoingMessage(
                pending_id=pending.id,
                identity_id=pending.identity_id,
                handle=handle,
                conv_id=pending.conv_id,
                message_id=message.id,
                mailbox=mailbox_from_row(mailbox),
                recipient=pending.recipient,
                subject=message.subject,
                text=message.text,
                html=message.html,
                message_id_header=message.message_id_header,
                in_reply_to=message.in_reply_to,
                references=tuple(load_json(message.references)),
                attempt=pending.attempts,
                request_id=pending.request_id,
            )
            for pending, message, mailbox, handle in rows
        ]

    async def _finish(self, pending_id: str, attempt: int, **values: object) -> bool:
        """Apply an outcome only if this claim still holds the row: a dispatcher whose
        lease ran out and was re-claimed must not record (or announce) anything."""
        result = await self.session.execute(
            update(PendingSendRow)
            .where(
                PendingSendRow.id == pending_id,
                PendingSendRow.status == SENDING,
                PendingSendRow.attempts == attempt,
            )
            .values(lease_until=None, **values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def finish_sent(self, pending_id: str, attempt: int, at: int) -> bool:
        return await self._finish(pending_id, attempt, status=SENT, sent_at=at)

    async def finish_failed(self, pending_id: str, attempt: int, error: str) -> bool:
        return await self._finish(pending_id, attempt, status=FAILED, last_error=error[:2000])

    async def retry_later(self, pending_id: str, attempt: int, at: int, error: str) -> bool:
        return await self._finish(
            pending_id, attempt, status=QUEUED, dispatch_at=at, last_error=error[:2000]
        )

    async def count_delivery(self, mailbox_id: str, day: str) -> None:
        await self._bump_usage(mailbox_id, day, "delivered")

    async def _bump_usage(self, mailbox_id: str, day: str, column: str) -> None:
        counts = {"sent": 0, "delivered": 0, "hits": 0, column: 1}
        statement = self.insert(MailboxUsageRow).values(mailbox_id=mailbox_id, day=day, **counts)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["mailbox_id", "day"],
                set_={column: getattr(MailboxUsageRow, column) + 1},
            )
        )

    async def lock_mailbox_health(self, mailbox_id: str) -> int:
        """The mailbox's health, with its row held until commit."""
        health = await self.session.scalar(
            select(MailboxRow.health).where(MailboxRow.id == mailbox_id).with_for_update()
        )
        assert health is not None
        return health

    async def record_health_hit(self, mailbox_id: str, health: int, day: str) -> None:
        """Store a lowered health and count the hit against the day (no clean day)."""
        await self.session.execute(
            update(MailboxRow).where(MailboxRow.id == mailbox_id).values(health=health)
        )
        await self._bump_usage(mailbox_id, day, "hits")

    async def contacts_pinned_to(self, mailbox_id: str) -> list[str]:
        rows = await self.session.scalars(
            select(ContactRow.address)
            .where(ContactRow.pinned_mailbox_id == mailbox_id)
            .order_by(ContactRow.address)
        )
        return list(rows)

    async def move_pins(self, dead_id: str, assignments: dict[str, str]) -> None:
        """Re-pin recipients (and their conversations and queued sends) off a dead mailbox."""
        for address, mailbox_id in assignments.items():
            await self.session.execute(
                update(ContactRow)
                .where(ContactRow.pinned_mailbox_id == dead_id, ContactRow.address == address)
                .values(pinned_mailbox_id=mailbox_id)
            )
            await self.session.execute(
                update(ConversationRow)
                .where(
                    ConversationRow.mailbox_id == dead_id, ConversationRow.correspondent == address
                )
                .values(mailbox_id=mailbox_id)
            )
            await self.session.execute(
                update(PendingSendRow)
                .where(
                    PendingSendRow.mailbox_id == dead_id,
                    PendingSendRow.recipient == address,
                    PendingSendRow.status == QUEUED,
                )
                .values(mailbox_id=mailbox_id)
            )

    async def cancel_queued(
        self,
        *,
        mailbox_id: str | None = None,
        identity_ids: list[str] | None = None,
        recipient: str | None = None,
        pending_id: str | None = None,
    ) -> list[CancelledSend]:
        """Cancel queued (not yet claimed) sends, and say which."""
        p = PendingSendRow
        # One conditional UPDATE: on PostgreSQL a row a dispatcher claims meanwhile is
        # re-checked after its lock is released and, no longer QUEUED, left alone (a
        # SELECT then an UPDATE by id would cancel a send that is being delivered).
        query = update(p).where(p.status == QUEUED)
        if mailbox_id is not None:
            query = query.where(p.mailbox_id == mailbox_id)
        if identity_ids is not None:
            query = query.where(p.identity_id.in_(identity_ids))
        if recipient is not None:
            query = query.where(p.recipient == recipient)
        if pending_id is not None:
            query = query.where(p.id == pending_id)
        cancelled = await self.session.execute(
            query.values(status=CANCELLED).returning(p.id, p.identity_id, p.conv_id, p.recipient)
        )
        return sorted(
            (
                CancelledSend(pending_id, identity_id, conv_id, to)
                for pending_id, identity_id, conv_id, to in cancelled
            ),
            key=lambda c: c.pending_id,
        )

    async def pending_status(self, pending_id: str) -> PendingStatus | None:
        status = await self.session.scalar(
            select(PendingSendRow.status).where(PendingSendRow.id == pending_id)
        )
        return None if status is None else PendingStatus(status)

    async def pending_ref(self, pending_id: str) -> PendingRef | None:
        p = PendingSendRow
        row = (
            await self.session.execute(
                select(p.identity_id, p.conv_id, p.recipient, p.status).where(p.id == pending_id)
            )
        ).first()
        if row is None:
            return None
        identity_id, conv_id, recipient, status = row
        return PendingRef(pending_id, identity_id, conv_id, recipient, PendingStatus(status))

    async def due_no_reply(self, now: int, limit: int, *, lock: bool) -> list[Conversation]:
        query = (
            select(*CONVERSATION_SELECT)
            .where(ConversationRow.no_reply_at.is_not(None), ConversationRow.no_reply_at <= now)
            .order_by(ConversationRow.no_reply_at, ConversationRow.id)
            .limit(limit)
        )
        if lock:
            query = query.with_for_update(skip_locked=True)
        rows = await self.session.execute(query)
        return [conversation_of(row) for row in rows]

    async def mailboxes_to_close(self, today: str) -> list[Mailbox]:
        """Mailboxes with a finished UTC day not applied yet."""
        yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
        rows = await self.session.scalars(
            select(MailboxRow)
            .where(or_(MailboxRow.closed_through.is_(None), MailboxRow.closed_through < yesterday))
            .with_for_update(skip_locked=True)  # PostgreSQL: one replica closes each mailbox
        )
        return [mailbox_from_row(row) for row in rows]

    async def mailbox_days(
        self, mailbox_id: str, after: str | None, before: str
    ) -> list[MailboxDay]:
        """The recorded days after `after` and before `before`, oldest first."""
        u = MailboxUsageRow
        query = select(u.day, u.delivered, u.hits).where(u.mailbox_id == mailbox_id, u.day < before)
        if after is not None:
            query = query.where(u.day > after)
        return [
            MailboxDay(day, delivered, hits)
            for day, delivered, hits in await self.session.execute(query.order_by(u.day))
        ]

    async def set_warmup(
        self, mailbox_id: str, stage: int, qualifying_days: int, health: int, closed_through: str
    ) -> None:
        await self.session.execute(
            update(MailboxRow)
            .where(MailboxRow.id == mailbox_id)
            .values(
                warmup_stage=stage,
                qualifying_days=qualifying_days,
                health=health,
                closed_through=closed_through,
            )
        )
