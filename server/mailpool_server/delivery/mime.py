"""An outgoing message as RFC 5322 bytes."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from mailpool_server.service.clock import from_ms
from mailpool_server.service.outbound import OutgoingMessage


def build(message: OutgoingMessage, at_ms: int) -> EmailMessage:
    """Message-ID (assigned at queue time, on the mailbox's domain, so a re-delivery
    carries the same one), Date, From = the mailbox, threading headers for replies,
    and text, html or both as multipart/alternative."""
    email = EmailMessage(policy=SMTP)
    email["Message-ID"] = message.message_id_header
    email["Date"] = format_datetime(from_ms(at_ms))
    email["From"] = message.mailbox.email
    email["To"] = message.recipient
    email["Subject"] = message.subject
    if message.in_reply_to:
        email["In-Reply-To"] = message.in_reply_to
    if message.references:
        email["References"] = " ".join(message.references)
    email["X-Mailpool-Pending-Id"] = message.pending_id
    if message.text:
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
    else:
        email.set_content(message.html, subtype="html")
    return email
