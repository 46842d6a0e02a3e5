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
# PostgreSQL: the reservation, the rows and the wake-up hint (delivered at commit, to
# every replica's listener), as CTEs that one statement runs in one round trip (with a
# send's other writes, in outbound.py). `reserved` returns the block's last seq.
APPEND_CTES = """reserved AS (
  UPDATE identities SET last_seq = last_seq + :event_count WHERE id = :identity
  RETURNING last_seq
), appended AS (
  INSERT INTO events (id, identity_id, seq, type, conv_id, created_at, data)
  SELECT e.id, :identity, reserved.last_seq - :event_count + e.position, e.type, e.conv_id,
    :created_at, e.data
  FROM reserved, unnest(:ids::text[], :types::text[], :conv_ids::text[], :data::text[])
    WITH ORDINALITY AS e(id, type, conv_id, data, position)
), woken AS (
  SELECT pg_notify(:channel, :identity || ':' || reserved.last_seq) FROM reserved
)"""
_APPEND_PG = Sql(f"WITH {APPEND_CTES} SELECT reserved.last_seq FROM reserved, woken")


def new_rows(events: list[NewEvent], at: int) -> tuple[list[str], list[str]]:
    """The events' new ids and their payloads as stored."""
    return [new_event_id(at) for _ in events], [dump(event.payload) for event in events]


def append_params(
    identity_id: str, events: list[NewEvent], at: int, ids: list[str], data: list[str]
) -> dict[str, object]:
    """APPEND_CTES' parameters (`ids`: new event ids; `data`: the payloads as stored)."""
    return {
        "identity": identity_id,
        "event_count": len(events),
        "created_at": at,
        "ids": ids,
        "types": [event.type.value for event in events],
        "conv_ids": [event.conv_id for event in events],
        "data": data,
        "channel": NOTIFY_CHANNEL,
    }


def stored_events(
    identity: Identity, events: list[NewEvent], at: int, ids: list[str], last_seq: int
) -> list[Event]:
    """The events as appended, the last one at `last_seq`."""
    first = last_seq - len(events) + 1
    return [
        Event(
            id=event_id,
            identity_id=identity.id,
            handle=identity.handle,
            seq=first + offset,
            conv_id=event.conv_id,
            created_at=at,
            payload=event.payload,
        )
        for offset, (event_id, event) in enumerate(zip(ids, events, strict=True))
    ]


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
        ids, data = new_rows(events, at)
        # One UPDATE reserves the whole block of seqs; the row stays locked until
        # commit, so the next transaction's block starts where this one's ended and
        # commit order is seq order.
        if self.dialect == "postgresql":
            row = await self.driver.one(
                _APPEND_PG, append_params(identity.id, events, at, ids, data)
            )
            assert row is not None
            last = int(row[0])
        else:
            last = await self._append_one_by_one(identity, events, at, ids, data)
        return stored_events(identity, events, at, ids, last)

    async def _append_one_by_one(
        self, identity: Identity, events: list[NewEvent], at: int, ids: list[str], data: list[str]
    ) -> int:
        reserved = await self.driver.one(
            _RESERVE_SEQS, {"identity": identity.id, "count": len(events)}
        )
        assert reserved is not None
        first = reserved[0] - len(events) + 1
        rows = [
            {
                "id": event_id,
                "identity": identity.id,
                "seq": first + offset,
                "type": event.type.value,
                "conv_id": event.conv_id,
                "created_at": at,
                "data": payload,
            }
            for offset, (event_id, event, payload) in enumerate(zip(ids, events, data, strict=True))
        ]
        await self.driver.insert_batched(_INSERT_EVENT, rows)
        return int(reserved[0])

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
