"""The contract's JSON (CONTRACT.md §3-4), each shape declared once. render.py returns these
types (mypy checks every key and value type) and openapi.py turns them into the document's
schemas (schema.py), which tests check real responses against.

Keys are the contract's camelCase names; "with" and "from" are Python keywords, so those
shapes use the functional TypedDict syntax. Key order here is the order render.py emits.
Every key is required unless marked NotRequired; every object is closed.

No `from __future__ import annotations` in this module: on Python 3.11 a TypedDict only
recognizes NotRequired in an evaluated annotation, and schema.py reads these at run time.
"""

# Keys are the contract's camelCase names. ruff exempts them in a TypedDict class, but does
# not recognize one that extends a functional-syntax TypedDict (Conversation).
# ruff: noqa: N815

from typing import Annotated, Literal, NotRequired, TypedDict

from mailpool.v1 import conversation_pb2, event_pb2, send_pb2
from mailpool_server.rest.names import EVENT_TYPES, enum_names
from mailpool_server.rest.schema import Choice, Doc, Minimum, Pattern

Ms = Annotated[int, Doc("Unix milliseconds (UTC)")]
Iso = Annotated[
    str,
    Doc("ISO 8601 UTC, e.g. 2026-04-27T08:35:29.000Z"),
    Pattern(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"),
]
Count = Annotated[int, Minimum(0)]
Seq = Annotated[int, Minimum(1)]

AccountId = Annotated[str, Pattern("^acc_[0-9a-f]+$")]
ConvId = Annotated[str, Pattern("^conv_[0-9a-f]+$")]
PendingId = Annotated[str, Pattern("^psn_[0-9a-f]+$")]
EventId = Annotated[str, Pattern("^evt_[0-9A-HJKMNP-TV-Z]{26}$")]

# Closed vocabularies come from the protos (names.py has the naming rules).
SendClass = Annotated[str, Choice(enum_names(send_pb2.SendClass))]
Affinity = Annotated[str, Choice(enum_names(send_pb2.Affinity))]
RejectReason = Annotated[str, Choice(enum_names(send_pb2.RejectReason))]
Direction = Annotated[str, Choice(enum_names(conversation_pb2.MessageDirection))]
CancelReason = Annotated[str, Choice(enum_names(event_pb2.CancelReason))]
BounceKind = Annotated[str, Choice(enum_names(event_pb2.BounceKind))]
EventType = Annotated[str, Choice(EVENT_TYPES)]


class Account(TypedDict):
    id: AccountId
    email: str


# POST /v1/identities/{handle}/send (§3.2). The `status` literals are RecipientStatus's
# names (test_shapes.py checks them against the proto).
class QueuedRecipient(TypedDict):
    to: str
    status: Literal["queued"]
    pendingId: PendingId
    convId: ConvId
    sendClass: SendClass
    affinity: Affinity
    account: Account
    dispatchAt: Ms
    dispatchAtIso: Iso


class RejectedRecipient(TypedDict):
    to: str
    status: Literal["rejected"]
    reason: RejectReason


class SendResponse(TypedDict):
    identity: str
    accepted: Count
    queued: Count  # the same number as accepted: both names exist in the wild
    rejected: Count
    remaining: Count
    results: list[QueuedRecipient | RejectedRecipient]


# Conversations (§3.4, §3.5).
ConversationSummary = TypedDict(
    "ConversationSummary",
    {
        "id": ConvId,
        "with": str,
        "subject": str,
        "snippet": str,
        "messageCount": Count,
        "archived": bool,
        "labels": list[str],
        "lastEventAt": Ms,
        "lastEventAtIso": Iso,
        "createdAt": Ms,
        "createdAtIso": Iso,
    },
)

Message = TypedDict(
    "Message",
    {
        "id": str,
        "messageIdHeader": str,
        "from": str,
        "to": list[str],
        "cc": list[str],
        "subject": str,
        "text": str,
        "html": str,
        "snippet": str,
        "ts": Ms,
        "tsIso": Iso,
    },
)


# Timeline items: `type` names the TimelineItem.item case (test_shapes.py checks that
# the literals below are exactly those cases).
class MessageItem(TypedDict):
    type: Literal["message"]
    direction: Direction
    message: Message
    ts: Ms
    tsIso: Iso


class NoReplyExpiredItem(TypedDict):
    type: Literal["no_reply_expired"]
    waitedMs: int
    ts: Ms
    tsIso: Iso


class LabelItem(TypedDict):
    type: Literal["label_added", "label_removed"]
    label: str
    ts: Ms
    tsIso: Iso


class ArchiveItem(TypedDict):
    type: Literal["archived", "unarchived"]
    ts: Ms
    tsIso: Iso


TimelineItem = MessageItem | NoReplyExpiredItem | LabelItem | ArchiveItem


class Conversation(ConversationSummary):
    noReplyAt: Ms | None
    noReplyAtIso: Iso | None
    lastNoReplyAt: Ms | None
    lastNoReplyAtIso: Iso | None
    events: list[TimelineItem]


class ConversationDetail(TypedDict):
    identity: str
    conversation: Conversation


class ConversationList(TypedDict):
    identity: str
    conversations: list[ConversationSummary]
    nextCursor: str | None  # null on the last page


# Events (§4): every type's data starts with identity and convId.
class EventData(TypedDict):
    identity: str
    convId: ConvId | None


class EmailQueuedData(EventData):
    pendingId: PendingId
    recipient: str
    sendClass: SendClass
    dispatchAt: Ms
    dispatchAtIso: Iso
    account: Account


# The message as email.sent carries it (no body, no time).
ShortMessage = TypedDict(
    "ShortMessage",
    {"id": str, "messageIdHeader": str, "from": str, "to": list[str], "subject": str},
)


class EmailSentData(EventData):
    pendingId: PendingId
    message: ShortMessage
    account: Account


class EmailCancelledData(EventData):
    pendingId: PendingId
    recipient: str
    reason: CancelReason


class EmailSendFailedPermanentlyData(EventData):
    pendingId: PendingId
    recipient: str
    error: str
    attempts: int


class InboundMessage(Message):
    direction: Direction


# email.received and email.replied carry the same data; one shape for both keeps the
# schema's oneOf unambiguous (two identical alternatives would both match).
class InboundData(EventData):
    message: InboundMessage


class EmailBouncedData(EventData):
    recipient: str
    kind: BounceKind
    statusCode: str
    diagnostic: str


class EmailNoReplyData(EventData):
    waitedMs: int


class MailboxReplacedData(EventData):
    oldAccount: Account
    repinned: int
    newAccount: Account | None  # null when no healthy peer was left


AnyEventData = (
    EmailQueuedData
    | EmailSentData
    | EmailCancelledData
    | EmailSendFailedPermanentlyData
    | InboundData
    | EmailBouncedData
    | EmailNoReplyData
    | MailboxReplacedData
)


class Event(TypedDict):
    id: EventId
    seq: Seq
    type: EventType
    createdAt: Ms
    createdAtIso: Iso
    convId: ConvId | None
    data: AnyEventData


class EventList(TypedDict):
    identity: str
    events: list[Event]
    cursor: Count  # the last seq returned, or `since`
    hasMore: bool


# Every error (§3, §3.7). status.py builds it; declared here so the schema has one source.
class ErrorBody(TypedDict):
    error: str
    details: NotRequired[dict[str, str]]


class CancelledSend(TypedDict):
    """POST /v1/identities/{handle}/sends/{pendingId}/cancel."""

    identity: str
    pendingId: str
    convId: ConvId
    to: str
    status: Literal["cancelled"]


class LabelStatsEntry(TypedDict):
    label: str
    conversations: Count
    replied: Count
    noReply: Count


class LabelStats(TypedDict):
    """GET /v1/identities/{handle}/labels/stats."""

    identity: str
    labels: list[LabelStatsEntry]


Day = Annotated[str, Pattern("^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


class IdentityUsageDay(TypedDict):
    day: Day
    accepted: Count
    cap: Count


class MailboxUsageDay(TypedDict):
    day: Day
    sent: Count
    cap: Count


class MailboxUsageHistory(TypedDict):
    id: AccountId
    email: str
    days: list[MailboxUsageDay]


class UsageHistory(TypedDict):
    """GET /v1/identities/{handle}/usage?days=N; caps of past days are today's."""

    identity: str
    days: list[IdentityUsageDay]
    mailboxes: list[MailboxUsageHistory]
