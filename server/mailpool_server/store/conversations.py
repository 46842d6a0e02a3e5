"""Conversations, their messages and timelines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from mailpool_server.service.addresses import domain_of
from mailpool_server.service.models import (
    Conversation,
    Delivery,
    Direction,
    Message,
    PendingStatus,
    TimelineEntry,
    TimelineType,
)
from mailpool_server.service.ports import LabelledConversation
from mailpool_server.store.base import TxBase, table
from mailpool_server.store.codec import dump, load_json
from mailpool_server.store.driver import Row, Sql, placeholders, quoted
from mailpool_server.store.tables import ConversationRow, MessageRow, PendingSendRow, TimelineRow


def conversation_values(c: Conversation) -> dict[str, object]:
    return {
        "identity_id": c.identity_id,
        "correspondent": c.correspondent,
        "correspondent_domain": domain_of(c.correspondent),
        "mailbox_id": c.mailbox_id,
        "subject": c.subject,
        "snippet": c.snippet,
        "message_count": c.message_count,
        "archived": c.archived,
        "labels": dump(c.labels),
        "created_at": c.created_at,
        "last_event_at": c.last_event_at,
        "last_message_id_header": c.last_message_id_header,
        "references": dump(c.references),
        "no_reply_after_ms": c.no_reply_after_ms,
        "no_reply_at": c.no_reply_at,
        "last_no_reply_at": c.last_no_reply_at,
    }


def _message(row: MessageRow) -> Message:
    return Message(
        id=row.id,
        conv_id=row.conv_id,
        direction=Direction(row.direction),
        message_id_header=row.message_id_header,
        from_address=row.from_address,
        to=tuple(load_json(row.to_addresses)),
        cc=tuple(load_json(row.cc_addresses)),
        subject=row.subject,
        text=row.text,
        html=row.html,
        snippet=row.snippet,
        ts=row.ts,
        in_reply_to=row.in_reply_to,
        references=tuple(load_json(row.references)),
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


CONVERSATION_STATE = (
    "identity_id",
    "correspondent",
    "correspondent_domain",
    "mailbox_id",
    "subject",
    "snippet",
    "message_count",
    "archived",
    "labels",
    "created_at",
    "last_event_at",
    "last_message_id_header",
    "references",
    "no_reply_after_ms",
    "no_reply_at",
    "last_no_reply_at",
)
_CONVERSATION_COLUMNS = quoted(("id", *CONVERSATION_STATE))
# The same columns for statements built with SQLAlchemy (the cold paths' filters).
CONVERSATION_SELECT = tuple(
    table(ConversationRow).c[column] for column in ("id", *CONVERSATION_STATE)
)
_INSERT_CONVERSATION = Sql(
    f"INSERT INTO conversations ({_CONVERSATION_COLUMNS})"
    f" VALUES ({placeholders(('id', *CONVERSATION_STATE))})"
)
_UPDATE_CONVERSATION = Sql(
    "UPDATE conversations SET "
    + ", ".join(f'"{c}" = :{c}' for c in CONVERSATION_STATE)
    + " WHERE id = :id"
)
_CONVERSATION_BY_ID = Sql(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = :id")
MESSAGE_COLUMNS = (
    "id",
    "conv_id",
    "direction",
    "message_id_header",
    "from_address",
    "to_addresses",
    "cc_addresses",
    "subject",
    "text",
    "html",
    "snippet",
    "in_reply_to",
    "references",
    "ts",
)
_INSERT_MESSAGE = Sql(
    f"INSERT INTO messages ({quoted(MESSAGE_COLUMNS)}) VALUES ({placeholders(MESSAGE_COLUMNS)})"
)
_INSERT_TIMELINE = Sql(
    "INSERT INTO timeline (conv_id, ts, type, message_id, data)"
    " VALUES (:conv_id, :ts, :type, :message_id, :data)"
)


def message_values(message: Message) -> dict[str, object]:
    """A message's row, by MESSAGE_COLUMNS."""
    return {
        "id": message.id,
        "conv_id": message.conv_id,
        "direction": message.direction.value,
        "message_id_header": message.message_id_header,
        "from_address": message.from_address,
        "to_addresses": dump(message.to),
        "cc_addresses": dump(message.cc),
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "snippet": message.snippet,
        "in_reply_to": message.in_reply_to,
        "references": dump(message.references),
        "ts": message.ts,
    }


def conversation_of(row: Row) -> Conversation:
    """A conversation from a row of CONVERSATION_COLUMNS, read by the driver or
    selected through SQLAlchemy (CONVERSATION_SELECT)."""
    (id_, identity_id, correspondent, _domain, mailbox_id, subject, snippet, message_count,
     archived, labels, created_at, last_event_at, last_header, references, after_ms,
     no_reply_at, last_no_reply_at) = row  # fmt: skip
    return Conversation(
        id=id_,
        identity_id=identity_id,
        correspondent=correspondent,
        mailbox_id=mailbox_id,
        subject=subject,
        snippet=snippet,
        message_count=message_count,
        archived=bool(archived),
        labels=tuple(load_json(labels)),
        created_at=created_at,
        last_event_at=last_event_at,
        last_message_id_header=last_header,
        references=tuple(load_json(references)),
        no_reply_after_ms=after_ms,
        no_reply_at=no_reply_at,
        last_no_reply_at=last_no_reply_at,
    )


def timeline_data(entry: TimelineEntry) -> str:
    data: dict[str, object] = {}
    if entry.waited_ms is not None:
        data["waited_ms"] = entry.waited_ms
    if entry.label is not None:
        data["label"] = entry.label
    return dump(data)


def _timeline_fields(raw: str) -> dict[str, Any]:
    # Rows written before timeline items were typed say waitedMs.
    data = load_json(raw)
    return {"waited_ms": data.get("waited_ms", data.get("waitedMs")), "label": data.get("label")}


class ConversationRepoSql(TxBase):
    async def add_conversation(self, conversation: Conversation) -> None:
        await self.driver.insert_batched(
            _INSERT_CONVERSATION, [{"id": conversation.id, **conversation_values(conversation)}]
        )

    async def update_conversation(self, conversation: Conversation) -> None:
        await self.driver.run(
            _UPDATE_CONVERSATION, {"id": conversation.id, **conversation_values(conversation)}
        )

    async def conversation_by_id(self, conv_id: str) -> Conversation | None:
        row = await self.driver.one(_CONVERSATION_BY_ID, {"id": conv_id})
        return None if row is None else conversation_of(row)

    async def add_message(self, message: Message) -> None:
        await self.driver.insert_batched(_INSERT_MESSAGE, [message_values(message)])

    async def add_timeline(self, conv_id: str, entry: TimelineEntry) -> None:
        await self.driver.insert_batched(
            _INSERT_TIMELINE,
            [
                {
                    "conv_id": conv_id,
                    "ts": entry.ts,
                    "type": entry.type.value,
                    "message_id": entry.message.id if entry.message else None,
                    "data": timeline_data(entry),
                }
            ],
        )

    async def timeline_of(self, conv_id: str) -> list[TimelineEntry]:
        rows = await self.session.execute(
            select(TimelineRow, MessageRow, PendingSendRow.id, PendingSendRow.status)
            .outerjoin(MessageRow, MessageRow.id == TimelineRow.message_id)
            .outerjoin(PendingSendRow, PendingSendRow.message_id == MessageRow.id)
            .where(TimelineRow.conv_id == conv_id)
            .order_by(TimelineRow.id)
        )
        return [
            TimelineEntry(
                type=TimelineType(item.type),
                ts=item.ts,
                message=_message(message) if message is not None else None,
                delivery=Delivery(pending_id, PendingStatus(status)) if pending_id else None,
                **_timeline_fields(item.data),
            )
            for item, message, pending_id, status in rows
        ]

    async def conversations_page(
        self,
        identity_id: str,
        *,
        archived: bool | None,
        correspondent: str | None,
        domain: str | None,
        since: int | None,
        until: int | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[Conversation]:
        c = ConversationRow
        query = select(*CONVERSATION_SELECT).where(c.identity_id == identity_id)
        if archived is not None:
            query = query.where(c.archived.is_(archived))
        if correspondent is not None:
            query = query.where(c.correspondent == correspondent)
        if domain is not None:
            query = query.where(
                or_(
                    c.correspondent_domain == domain,
                    c.correspondent_domain.like("%." + _like_escape(domain), escape="\\"),
                )
            )
        if since is not None:
            query = query.where(c.last_event_at >= since)
        if until is not None:
            query = query.where(c.last_event_at <= until)
        if after is not None:
            # Keyset paging on (last_event_at, id), both descending: stable when rows
            # share a time, and unaffected by rows added ahead of the cursor.
            at, conv_id = after
            query = query.where(
                or_(c.last_event_at < at, and_(c.last_event_at == at, c.id < conv_id))
            )
        rows = await self.session.execute(
            query.order_by(c.last_event_at.desc(), c.id.desc()).limit(limit)
        )
        return [conversation_of(row) for row in rows]

    async def labelled_conversations(self, identity_id: str) -> list[LabelledConversation]:
        # Labels are a JSON list in a TEXT column, so every conversation of the identity
        # is read and the use case counts in Python (two queries: labels and timer, then
        # the ids of the replied ones). Fine at today's sizes; a label table (or JSON
        # functions per dialect) is the way once identities hold many thousands.
        c, m = ConversationRow, MessageRow
        rows = (
            await self.session.execute(
                select(c.id, c.labels, c.last_no_reply_at).where(c.identity_id == identity_id)
            )
        ).all()
        replied = set(
            await self.session.scalars(
                select(m.conv_id)
                .join(c, c.id == m.conv_id)
                .where(c.identity_id == identity_id, m.direction == Direction.INBOUND.value)
                .distinct()
            )
        )
        return [
            LabelledConversation(tuple(found), conv_id in replied, fired is not None)
            for conv_id, labels, fired in rows
            if (found := load_json(labels))
        ]

    async def conversation_by_message_ids(
        self, identity_id: str, headers: list[str]
    ) -> Conversation | None:
        """The conversation of the identity holding the first of `headers` (newest
        ancestor first) that is one of its messages."""
        if not headers:
            return None
        rows = await self.session.execute(
            select(MessageRow.message_id_header, *CONVERSATION_SELECT)
            .join(ConversationRow, ConversationRow.id == MessageRow.conv_id)
            .where(
                ConversationRow.identity_id == identity_id,
                MessageRow.message_id_header.in_(headers),
            )
        )
        found = {header: conversation for header, *conversation in rows}
        for header in headers:
            if header in found:
                return conversation_of(found[header])
        return None

    async def message_by_header(self, identity_id: str, header: str) -> Message | None:
        row = await self.session.scalar(
            select(MessageRow)
            .join(ConversationRow, ConversationRow.id == MessageRow.conv_id)
            .where(
                ConversationRow.identity_id == identity_id, MessageRow.message_id_header == header
            )
            .limit(1)
        )
        return None if row is None else _message(row)
