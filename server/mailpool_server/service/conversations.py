"""Reading an identity's conversations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from mailpool_server.service.addresses import normalize
from mailpool_server.service.auth import identity_in_org
from mailpool_server.service.clock import Clock, SystemClock, now_ms
from mailpool_server.service.errors import ConversationNotFound, InvalidArgument
from mailpool_server.service.ids import CONV_ID
from mailpool_server.service.models import (
    Conversation,
    Identity,
    TimelineEntry,
    TimelineType,
)
from mailpool_server.service.paging import decode_token, encode_token, page_size
from mailpool_server.service.ports import LabelledConversation, Store, Tx
from mailpool_server.service.send_request import MAX_LABEL_CHARS, MAX_LABELS


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


@dataclass(frozen=True)
class LabelCount:
    """One label of an identity: its conversations, the replied ones, the ones whose
    no-reply timer fired."""

    label: str
    conversations: int
    replied: int
    no_reply: int


def count_labels(conversations: list[LabelledConversation]) -> list[LabelCount]:
    """Per label, sorted by name; a label listed twice on one conversation counts once."""
    counts: dict[str, list[int]] = {}
    for c in conversations:
        for label in set(c.labels):
            row = counts.setdefault(label, [0, 0, 0])
            row[0] += 1
            row[1] += c.replied
            row[2] += c.no_reply_fired
    return [LabelCount(label, *counts[label]) for label in sorted(counts)]


@dataclass(frozen=True)
class LabelStats:
    handle: str
    labels: list[LabelCount]


# The timeline items a change makes and the conversation after it.
_Change = Callable[[Conversation], tuple[list[TimelineEntry], Conversation]]


def _check_conv_id(conv_id: str) -> None:
    if not CONV_ID.match(conv_id):
        raise InvalidArgument.of("convId", "must match ^conv_[0-9a-f]+$")


def _check_labels(labels: tuple[str, ...]) -> tuple[str, ...]:
    """1..MAX_LABELS labels as send takes them; duplicates collapse, first one kept."""
    if not labels:
        raise InvalidArgument.of("labels", "must list at least one label")
    if len(labels) > MAX_LABELS:
        raise InvalidArgument.of("labels", f"must list at most {MAX_LABELS} labels")
    for label in labels:
        if not 1 <= len(label) <= MAX_LABEL_CHARS or not label.isprintable():
            raise InvalidArgument.of(
                "labels", f"each label is 1..{MAX_LABEL_CHARS} printable characters"
            )
    return tuple(dict.fromkeys(labels))


class ConversationQueries:
    """Reads of conversations, and the changes a user makes to one (archive, labels)."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self._store = store
        self._clock: Clock = clock or SystemClock()

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
        _check_conv_id(conv_id)
        async with self._store.read() as tx:
            identity = await identity_in_org(tx, org_id, handle)
            conversation = await _conversation_of(tx, identity, conv_id)
            timeline = await tx.timeline_of(conv_id)
        return ConversationDetail(identity.handle, conversation, timeline)

    async def label_stats(self, org_id: str, handle: str) -> LabelStats:
        """Per label (sorted by name): conversations, replied ones, fired no-reply timers."""
        async with self._store.read() as tx:
            identity = await identity_in_org(tx, org_id, handle)
            labelled = await tx.labelled_conversations(identity.id)
        return LabelStats(identity.handle, count_labels(labelled))

    async def set_archived(
        self, org_id: str, handle: str, conv_id: str, archived: bool
    ) -> ConversationDetail:
        """Archive or unarchive; already in that state is a no-op (no timeline item)."""
        _check_conv_id(conv_id)
        kind = TimelineType.ARCHIVED if archived else TimelineType.UNARCHIVED

        def change(c: Conversation) -> tuple[list[TimelineEntry], Conversation]:
            if c.archived == archived:
                return [], c
            return [TimelineEntry(kind, 0)], replace(c, archived=archived)

        return await self._change(org_id, handle, conv_id, change)

    async def add_labels(
        self, org_id: str, handle: str, conv_id: str, labels: tuple[str, ...]
    ) -> ConversationDetail:
        """Add the labels not set yet (in the order given, after the existing ones), one
        label_added item each; labels already set are skipped."""
        _check_conv_id(conv_id)
        wanted = _check_labels(labels)

        def change(c: Conversation) -> tuple[list[TimelineEntry], Conversation]:
            added = tuple(x for x in wanted if x not in c.labels)
            items = [TimelineEntry(TimelineType.LABEL_ADDED, 0, label=x) for x in added]
            return items, replace(c, labels=c.labels + added)

        return await self._change(org_id, handle, conv_id, change)

    async def remove_labels(
        self, org_id: str, handle: str, conv_id: str, labels: tuple[str, ...]
    ) -> ConversationDetail:
        """Remove the labels that are set, one label_removed item each; others are skipped."""
        _check_conv_id(conv_id)
        unwanted = _check_labels(labels)

        def change(c: Conversation) -> tuple[list[TimelineEntry], Conversation]:
            removed = [x for x in unwanted if x in c.labels]
            items = [TimelineEntry(TimelineType.LABEL_REMOVED, 0, label=x) for x in removed]
            kept = tuple(x for x in c.labels if x not in removed)
            return items, replace(c, labels=kept)

        return await self._change(org_id, handle, conv_id, change)

    async def _change(
        self,
        org_id: str,
        handle: str,
        conv_id: str,
        change: _Change,
    ) -> ConversationDetail:
        """Read, change and store one conversation under the identity's row lock, so
        concurrent changes (and sends) of the identity apply one after the other. The
        timeline items get the current time, which also becomes last_event_at (the time
        of the newest timeline item). No event is appended: the contract's event list
        has no type for these user actions."""
        now = now_ms(self._clock)
        async with self._store.write() as tx:
            identity = await identity_in_org(tx, org_id, handle, lock=True)
            conversation = await _conversation_of(tx, identity, conv_id)
            items, changed = change(conversation)
            if items:
                changed = replace(changed, last_event_at=max(now, conversation.last_event_at))
                await tx.update_conversation(changed)
                for item in items:
                    await tx.add_timeline(conv_id, replace(item, ts=now))
            timeline = await tx.timeline_of(conv_id)
        return ConversationDetail(identity.handle, changed, timeline)


async def _conversation_of(tx: Tx, identity: Identity, conv_id: str) -> Conversation:
    conversation = await tx.conversation_by_id(conv_id)
    if conversation is None or conversation.identity_id != identity.id:
        raise ConversationNotFound(conv_id)
    return conversation
