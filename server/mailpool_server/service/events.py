"""Event types and the payloads use cases append to an identity's log."""

from __future__ import annotations

from dataclasses import dataclass

from mailpool_server.service.models import Message

EMAIL_QUEUED = "email.queued"
EMAIL_SENT = "email.sent"
EMAIL_CANCELLED = "email.cancelled"
EMAIL_SEND_FAILED_PERMANENTLY = "email.send_failed_permanently"
EMAIL_RECEIVED = "email.received"
EMAIL_REPLIED = "email.replied"
EMAIL_BOUNCED = "email.bounced"
EMAIL_NO_REPLY = "email.no_reply"
MAILBOX_REPLACED = "mailbox.replaced"

EVENT_TYPES: tuple[str, ...] = (
    EMAIL_QUEUED,
    EMAIL_SENT,
    EMAIL_CANCELLED,
    EMAIL_SEND_FAILED_PERMANENTLY,
    EMAIL_RECEIVED,
    EMAIL_REPLIED,
    EMAIL_BOUNCED,
    EMAIL_NO_REPLY,
    MAILBOX_REPLACED,
)


@dataclass(frozen=True)
class NewEvent:
    """An event before the store gives it an id and the identity's next seq."""

    type: str
    conv_id: str | None
    data: dict[str, object]


def account(mailbox_id: str, email: str) -> dict[str, object]:
    return {"id": mailbox_id, "email": email}


def email_queued(
    *,
    conv_id: str,
    pending_id: str,
    recipient: str,
    send_class: str,
    dispatch_at: int,
    mailbox_id: str,
    mailbox_email: str,
) -> NewEvent:
    return NewEvent(
        EMAIL_QUEUED,
        conv_id,
        {
            "pendingId": pending_id,
            "recipient": recipient,
            "sendClass": send_class,
            "dispatchAt": dispatch_at,
            "account": account(mailbox_id, mailbox_email),
        },
    )


def message_data(message: Message, *, full: bool = True) -> dict[str, object]:
    """A message as event data: the contract's names. `full=False` keeps the fields
    email.sent carries (id, messageIdHeader, from, to, subject)."""
    data: dict[str, object] = {
        "id": message.id,
        "messageIdHeader": message.message_id_header,
        "from": message.from_address,
        "to": list(message.to),
        "subject": message.subject,
    }
    if full:
        data.update(
            direction=message.direction.value,
            cc=list(message.cc),
            text=message.text,
            html=message.html,
            snippet=message.snippet,
            ts=message.ts,
        )
    return data


def email_sent(pending_id: str, message: Message, mailbox_id: str, email: str) -> NewEvent:
    return NewEvent(
        EMAIL_SENT,
        message.conv_id,
        {
            "pendingId": pending_id,
            "message": message_data(message, full=False),
            "account": account(mailbox_id, email),
        },
    )


def email_cancelled(conv_id: str, pending_id: str, recipient: str, reason: str) -> NewEvent:
    return NewEvent(
        EMAIL_CANCELLED,
        conv_id,
        {"pendingId": pending_id, "recipient": recipient, "reason": reason},
    )


def email_send_failed_permanently(
    conv_id: str, pending_id: str, recipient: str, error: str, attempts: int
) -> NewEvent:
    return NewEvent(
        EMAIL_SEND_FAILED_PERMANENTLY,
        conv_id,
        {"pendingId": pending_id, "recipient": recipient, "error": error, "attempts": attempts},
    )


def email_inbound(message: Message, *, threaded: bool) -> NewEvent:
    """email.replied when the message threads onto a conversation, else email.received."""
    return NewEvent(
        EMAIL_REPLIED if threaded else EMAIL_RECEIVED,
        message.conv_id,
        {"message": message_data(message)},
    )


def email_bounced(
    conv_id: str | None, recipient: str, kind: str, status_code: str, diagnostic: str
) -> NewEvent:
    return NewEvent(
        EMAIL_BOUNCED,
        conv_id,
        {"recipient": recipient, "kind": kind, "statusCode": status_code, "diagnostic": diagnostic},
    )


def email_no_reply(conv_id: str, waited_ms: int) -> NewEvent:
    return NewEvent(EMAIL_NO_REPLY, conv_id, {"waitedMs": waited_ms})


def mailbox_replaced(
    old: dict[str, object], repinned: int, new: dict[str, object] | None
) -> NewEvent:
    return NewEvent(
        MAILBOX_REPLACED, None, {"oldAccount": old, "repinned": repinned, "newAccount": new}
    )
