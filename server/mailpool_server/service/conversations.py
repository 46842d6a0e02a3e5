"""Reading an identity's conversations."""

from __future__ import annotations

from dataclasses import dataclass

from mailpool_server.service.addresses import normalize
from mailpool_server.service.auth import identity_in_org
from mailpool_server.service.errors import ConversationNotFound, InvalidArgument
from mailpool_server.service.ids import CONV_ID
from mailpool_server.service.models import Conversation, TimelineEntry
from mailpool_server.service.paging import decode_token, encode_token, page_size
from mailpool_server.service.ports import Store


@dataclass(frozen=True)
class ConversationFilter:
    archived: bool | None = None
    correspondent: str | None = None
    domain: str | None = None
    since: int | None = None
    until: int | None = None


@dataclass(frozen=True)
class ConversationPage:
    handle: str
    conversations: list[Conversation]
    next_token: str


@dataclass(frozen=True)
class ConversationDetail:
    handle: str
    conversation: Conversation
    timeline: list[TimelineEntry]


class ConversationQueries:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def list(
        self, org_id: str, handle: str, where: ConversationFilter, size: int | None, token: str
    ) -> ConversationPage:
        """Newest activity first; the token is the (last_event_at, id) of the last row."""
        limit = page_size(size, field="limit", default=50)
        after = None
        if token:
            at, conv_id = decode_token(token, field="cursor", shape=(int, str))
            after = (at, conv_id)
        domain = where.domain.strip().lower().lstrip("@.") if where.domain is not None else None
        if domain is not None and not domain:
            raise InvalidArgument.of("withDomain", "must name a domain")
        if where.since is not None and where.until is not None and where.since > where.until:
            raise InvalidArgument.of("since", "must not be after until")
        async with self._store.read() as tx:
            identity = await identity_in_org(tx, org_id, handle)
            rows = await tx.conversations_page(
                identity.id,
                archived=where.archived,
                correspondent=normalize(where.correspondent) if where.correspondent else None,
                domain=domain,
                since=where.since,
                until=where.until,
                after=after,
                limit=limit + 1,
            )
        more = len(rows) > limit
        rows = rows[:limit]
        next_token = encode_token([rows[-1].last_event_at, rows[-1].id]) if more else ""
        return ConversationPage(identity.handle, rows, next_token)

    async def get(self, org_id: str, handle: str, conv_id: str) -> ConversationDetail:
        if not CONV_ID.match(conv_id):
            raise InvalidArgument.of("convId", "must match ^conv_[0-9a-f]+$")
        async with self._store.read() as tx:
            identity = await identity_in_org(tx, org_id, handle)
            conversation = await tx.conversation_by_id(conv_id)
            if conversation is None or conversation.identity_id != identity.id:
                raise ConversationNotFound(conv_id)
            timeline = await tx.timeline_of(conv_id)
        return ConversationDetail(identity.handle, conversation, timeline)
