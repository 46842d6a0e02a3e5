"""Event types and the payloads use cases append to an identity's log."""

from __future__ import annotations

from dataclasses import dataclass

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
