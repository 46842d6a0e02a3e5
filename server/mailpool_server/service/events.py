"""Event types and their typed payloads: one frozen dataclass per type.

The union of the payload classes is what an event carries. Each class names its own
wire type, so a payload can never be filed under the wrong one. The store serializes
payloads, rpc/ maps their attributes onto the proto messages, and only the HTTP shim
knows the contract's camelCase names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from mailpool_server.service.models import Direction, MailboxRef, Message, SendClass


class EventType(enum.StrEnum):
    EMAIL_QUEUED = "email.queued"
    EMAIL_SENT = "email.sent"
    EMAIL_CANCELLED = "email.cancelled"
    EMAIL_SEND_FAILED_PERMANENTLY = "email.send_failed_permanently"
    EMAIL_RECEIVED = "email.received"
    EMAIL_REPLIED = "email.replied"
    EMAIL_BOUNCED = "email.bounced"
    EMAIL_NO_REPLY = "email.no_reply"
    MAILBOX_REPLACED = "mailbox.replaced"


class CancelReason(enum.StrEnum):
    DO_NOT_CONTACT = "do_not_contact"
    NO_ACCOUNTS = "no_accounts"
    ADMIN = "admin"


class BounceKind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True)
class SentMessage:
    """The part of an outbound message that email.sent reports."""

    id: str
    message_id_header: str
    from_address: str
    to: tuple[str, ...]
    subject: str

    @classmethod
    def of(cls, message: Message) -> SentMessage:
        return cls(
            message.id, message.message_id_header, message.from_address, message.to, message.subject
        )


@dataclass(frozen=True)
class MessageBody:
    """A whole message as inbound events report it."""

    id: str
    direction: Direction
    message_id_header: str
    from_address: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    html: str
    snippet: str
    ts: int

    @classmethod
    def of(cls, m: Message) -> MessageBody:
        return cls(
            m.id,
            m.direction,
            m.message_id_header,
            m.from_address,
            m.to,
            m.cc,
            m.subject,
            m.text,
            m.html,
            m.snippet,
            m.ts,
        )


@dataclass(frozen=True)
class EmailQueued:
    TYPE: ClassVar[EventType] = EventType.EMAIL_QUEUED
    pending_id: str
    recipient: str
    send_class: SendClass
    dispatch_at: int
    mailbox: MailboxRef


@dataclass(frozen=True)
class EmailSent:
    TYPE: ClassVar[EventType] = EventType.EMAIL_SENT
    pending_id: str
    message: SentMessage
    mailbox: MailboxRef


@dataclass(frozen=True)
class EmailCancelled:
    TYPE: ClassVar[EventType] = EventType.EMAIL_CANCELLED
    pending_id: str
    recipient: str
    reason: CancelReason


@dataclass(frozen=True)
class EmailSendFailedPermanently:
    TYPE: ClassVar[EventType] = EventType.EMAIL_SEND_FAILED_PERMANENTLY
    pending_id: str
    recipient: str
    error: str
    attempts: int


@dataclass(frozen=True)
class EmailReceived:
    """Inbound mail that threads onto no conversation (it opened a new one)."""

    TYPE: ClassVar[EventType] = EventType.EMAIL_RECEIVED
    message: MessageBody


@dataclass(frozen=True)
class EmailReplied:
    """Inbound mail that threads onto one of the identity's conversations."""

    TYPE: ClassVar[EventType] = EventType.EMAIL_REPLIED
    message: MessageBody


@dataclass(frozen=True)
class EmailBounced:
    TYPE: ClassVar[EventType] = EventType.EMAIL_BOUNCED
    recipient: str
    kind: BounceKind
    status_code: str
    diagnostic: str


@dataclass(frozen=True)
class EmailNoReply:
    TYPE: ClassVar[EventType] = EventType.EMAIL_NO_REPLY
    waited_ms: int


@dataclass(frozen=True)
class MailboxReplaced:
    TYPE: ClassVar[EventType] = EventType.MAILBOX_REPLACED
    old_mailbox: MailboxRef
    repinned: int
    new_mailbox: MailboxRef | None


EventPayload = (
    EmailQueued
    | EmailSent
    | EmailCancelled
    | EmailSendFailedPermanently
    | EmailReceived
    | EmailReplied
    | EmailBounced
    | EmailNoReply
    | MailboxReplaced
)
PAYLOAD_TYPES: dict[EventType, type[EventPayload]] = {
    cls.TYPE: cls
    for cls in (
        EmailQueued,
        EmailSent,
        EmailCancelled,
        EmailSendFailedPermanently,
        EmailReceived,
        EmailReplied,
        EmailBounced,
        EmailNoReply,
        MailboxReplaced,
    )
}
assert set(PAYLOAD_TYPES) == set(EventType), "every event type has one payload class"


@dataclass(frozen=True)
class NewEvent:
    """An event before the store gives it an id and the identity's next seq."""

    conv_id: str | None
    payload: EventPayload

    @property
    def type(self) -> EventType:
        return self.payload.TYPE


@dataclass(frozen=True)
class Event:
    """An entry of an identity's log."""

    id: str
    identity_id: str
    handle: str
    seq: int
    conv_id: str | None
    created_at: int
    payload: EventPayload

    @property
    def type(self) -> EventType:
        return self.payload.TYPE


def inbound(message: Message, *, threaded: bool) -> NewEvent:
    """email.replied when the message threads onto a conversation, else email.received."""
    body = MessageBody.of(message)
    return NewEvent(message.conv_id, EmailReplied(body) if threaded else EmailReceived(body))
