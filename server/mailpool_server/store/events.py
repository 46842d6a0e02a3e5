"""The per-identity event log."""

from __future__ import annotations

from mailpool_server.service.events import Event, NewEvent
from mailpool_server.service.ids import new_event_id
from mailpool_server.service.models import Identity
from mailpool_server.store.base import TxBase
from mailpool_server.store.codec import dump, load_payload
from mailpool_server.store.driver import Sql, set_sql

NOTIFY_CHANNEL = "mailpool_events"


# One UPDATE reserves a block of seqs (see append_events).
_RESERVE_SEQS = Sql(
    "UPDATE identities SET last_seq = last_seq + :count WHERE id = :identity RETURNING last_seq"
)
_INSERT_EVENT = Sql(
    "INSERT INTO events (id, identity_id, seq, type, conv_id, created_at, data)"
    " VALUES (:id, :identity, :seq, :type, :conv_id, :created_at, :data)"
)
_NOTIFY = Sql("SELECT pg_notify(:channel, :payload)")
_PAGE = (
    "SELECT id, seq, type, conv_id, created_at, data FROM events"
    " WHERE identity_id = :identity AND seq > :since"
)
_EVENTS_AFTER = Sql(_PAGE + " ORDER BY seq LIMIT :limit")
_EVENTS_OF_TYPES_AFTER = set_sql(_PAGE + " AND {types} ORDER BY seq LIMIT :limit", types="type")
_HEAD_SEQS = set_sql("SELECT id, last_seq FROM identities WHERE {ids}", ids="id")


class EventRepoSql(TxBase):
    async def append_events(
        self, identity: Identity, events: list[NewEvent], at: int
    ) -> list[Event]:
        if not events:
            return []
        # One UPDATE reserves the whole block of seqs; the row stays locked until
        # commit, so the next transaction's block starts where this one's ended and
        # commit order is seq order.
        reserved = await self.driver.one(
            _RESERVE_SEQS, {"identity": identity.id, "count": len(events)}
        )
        assert reserved is not None
        last = reserved[0]
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
        rows = [
            {
                "id": e.id,
                "identity": e.identity_id,
                "seq": e.seq,
                "type": e.type,
                "conv_id": e.conv_id,
                "created_at": e.created_at,
                "data": dump(e.payload),
            }
            for e in appended
        ]
        if len(rows) == 1:
            await self.driver.run(_INSERT_EVENT, rows[0])
        else:
            await self.driver.run_many(_INSERT_EVENT, rows)
        if self.dialect == "postgresql":
            # Delivered at commit, to every replica's listener: a wake-up hint.
            await self.driver.run(
                _NOTIFY, {"channel": NOTIFY_CHANNEL, "payload": f"{identity.id}:{last}"}
            )
        return appended

    async def events_after(
        self, identity: Identity, since: int, types: tuple[str, ...], limit: int
    ) -> list[Event]:
        params: dict[str, object] = {"identity": identity.id, "since": since, "limit": limit}
        if types:
            params["types"] = list(types)
        rows = await self.driver.all(_EVENTS_OF_TYPES_AFTER if types else _EVENTS_AFTER, params)
        return [
            Event(
                id=id_,
                identity_id=identity.id,
                handle=identity.handle,
                seq=seq,
                conv_id=conv_id,
                created_at=created_at,
                payload=load_payload(type_, data),
            )
            for id_, seq, type_, conv_id, created_at, data in rows
        ]

    async def head_seqs(self, identity_ids: list[str]) -> dict[str, int]:
        rows = await self.driver.all(_HEAD_SEQS, {"ids": identity_ids})
        return {identity_id: seq for identity_id, seq in rows}
