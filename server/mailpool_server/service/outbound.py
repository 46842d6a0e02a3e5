"""What a transport is asked to deliver, and how it may fail. Transports live in
delivery/; the dispatcher only sees this contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailpool_server.service.models import Mailbox


@dataclass(frozen=True)
class OutgoingMessage:
    pending_id: str
    identity_id: str
    handle: str
    conv_id: str
    message_id: str
    mailbox: Mailbox
    recipient: str
    subject: str
    text: str
    html: str
    message_id_header: str
    in_reply_to: str | None
    references: tuple[str, ...]
    attempt: int  # the claim this delivery belongs to (attempts so far, this one included)
    request_id: str | None = None  # of the request that queued it, for the logs


class TransientDeliveryError(Exception):
    """Try again later (4xx replies, timeouts, refused connections)."""


class PermanentDeliveryError(Exception):
    """Do not try again (5xx replies). `auth_failure` marks the mailbox's credentials."""

    def __init__(self, message: str, *, auth_failure: bool = False) -> None:
        super().__init__(message)
        self.auth_failure = auth_failure


class MessageTransport(Protocol):
    async def deliver(self, message: OutgoingMessage) -> None:
        """Hand the message over; return only once the receiving side has accepted it."""
        ...
