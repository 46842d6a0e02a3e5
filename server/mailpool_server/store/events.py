"""The per-identity event log."""

from __future__ import annotations

from sqlalchemy import bindparam, select, text, update

from mailpool_server.service.events import Event, NewEvent
from mailpool_server.service.ids import new_event_id
from mailpool_server.service.models import Identity
from mailpool_server.store.base import TxBase, table
from mailpool_server.store.codec import dump, load_payload
from mailpool_server.store.tables import EventRow, IdentityRow

NOTIFY_CHANNEL = "mailpool_events"


_IDENTITIES = table(IdentityRow)
# One UPDATE reserves a block of seqs (see append_events).
_RESERVE_SEQS = (
    update(_IDENTITIES)
    .where(_IDENTITIES.c.id == bindparam("identity"))
    .values(last_seq=_IDENTITIES.c.last_seq + bindparam("count"))
    .returning(_IDENTITIES.c.last_seq)
)
_INSERT_EVENTS = table(EventRow).insert()
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class EventRepoSql(TxBase):
    async def append_events(
        self, identity: Identity, events: list[NewEvent], at: int
    ) -> list[Event]:
        if not events:
            return []
        # One UPDATE reserves the whole block of seqs; the row stays locked until
        # commit, so the next transaction's block starts where this one's ended and
        # commit order is seq order.
        last = await self.session.scalar(
            _RESERVE_SEQS, {"identity": identity.id, "count": len(events)}
        )
        assert last is not None
        first = last - len(events) + 1
        appended = [
            Event(
                id=new_event_id(at),
                identity_id=identity.id,
                handle=identity.handle,
                seq=first + offset,
                conv_id=event.conv_id,
                created_at=at,
                payload=event.payload,
            )
            for offset, event in enumerate(events)
        ]
        await self.session.execute(
            _INSERT_EVENTS,
            [
                {
                    "id": e.id,
                    "identity_id": e.identity_id,
                    "seq": e.seq,
                    "type": e.type,
                    "conv_id": e.conv_id,
                    "created_at": e.created_at,
                    "data": dump(e.payload),
                }
                for e in appended
            ],
        )
        if self.dialect == "postgresql":
            # Delivered at commit, to every replica's listener: a wake-up hint.
            await self.session.execute(
                _NOTIFY,
                {"channel": NOTIFY_CHANNEL, "payload": f"{identity.id}:{last}"},
            )
        return appended

    async def events_after(
        self, identity: Identity, since: int, types: tuple[str, ...], limit: int
    ) -> list[Event]:
        query = select(EventRow).where(EventRow.identity_id == identity.id, EventRow.seq > since)
        if types:
            query = query.where(EventRow.type.in_(types))
        rows = await self.session.scalars(query.order_by(EventRow.seq).limit(limit))
        return [
            Event(
                id=row.id,
                identity_id=row.identity_id,
                handle=identity.handle,
                seq=row.seq,
                conv_id=row.conv_id,
                created_at=row.created_at,
                payload=load_payload(row.type, row.data),
            )
            for row in rows
        ]

    async def head_seqs(self, identity_ids: list[str]) -> dict[str, int]:
        rows = await self.session.execute(
            select(IdentityRow.id, IdentityRow.last_seq).where(IdentityRow.id.in_(identity_ids))
        )
        return {identity_id: seq for identity_id, seq in rows}
