"""Domain errors, carrying the contract's exact texts and a stable reason.

ErrorReason's values are the names of the proto enum mailpool.v1.ErrorReason without
its prefix (a test holds the two equal); rpc/status.py maps each class to a gRPC code,
and the shim maps codes to HTTP statuses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailpool_server.service.models import SendResult
    from mailpool_server.service.policy import Tier


class ErrorReason(enum.StrEnum):
    API_KEY_MISSING = "API_KEY_MISSING"
    API_KEY_MALFORMED = "API_KEY_MALFORMED"
    API_KEY_INVALID = "API_KEY_INVALID"
    IDENTITY_NOT_FOUND = "IDENTITY_NOT_FOUND"
    CONVERSATION_NOT_FOUND = "CONVERSATION_NOT_FOUND"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    MUTUALLY_EXCLUSIVE_FIELDS = "MUTUALLY_EXCLUSIVE_FIELDS"
    IDEMPOTENCY_KEY_MALFORMED = "IDEMPOTENCY_KEY_MALFORMED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_USE = "IDEMPOTENCY_KEY_IN_USE"
    CAP_EXCEEDED = "CAP_EXCEEDED"
    NO_ACCOUNTS = "NO_ACCOUNTS"
    RECIPIENTS_REJECTED = "RECIPIENTS_REJECTED"
    SEQ_IN_FUTURE = "SEQ_IN_FUTURE"
    SUBSCRIBER_STALLED = "SUBSCRIBER_STALLED"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    CONTENTION = "CONTENTION"
    INTERNAL = "INTERNAL"
    PENDING_SEND_NOT_FOUND = "PENDING_SEND_NOT_FOUND"
    SEND_ALREADY_DISPATCHED = "SEND_ALREADY_DISPATCHED"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field, named as the HTTP contract names it."""

    field: str
    description: str


class MailpoolError(Exception):
    """Base of every error a client may see; `message` is the contract's text."""

    reason: ErrorReason = ErrorReason.INTERNAL
    # How long until retrying can succeed (caps reset at midnight UTC); None: no hint.
    retry_after_ms: int | None = None

    def __init__(self, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, str] = details or {}


class Unauthenticated(MailpoolError):
    pass


class ApiKeyMissing(Unauthenticated):
    reason = ErrorReason.API_KEY_MISSING

    def __init__(self) -> None:
        super().__init__("missing api key")


class ApiKeyMalformed(Unauthenticated):
    reason = ErrorReason.API_KEY_MALFORMED

    def __init__(self, details: dict[str, str] | None = None) -> None:
        super().__init__("invalid api key format", details)


class ApiKeyInvalid(Unauthenticated):
    reason = ErrorReason.API_KEY_INVALID

    def __init__(self) -> None:
        super().__init__("invalid api key")


class NotFound(MailpoolError):
    pass


class IdentityNotFound(NotFound):
    reason = ErrorReason.IDENTITY_NOT_FOUND

    def __init__(self, handle: str) -> None:
        super().__init__("identity not found in org", {"handle": handle})


class ConversationNotFound(NotFound):
    reason = ErrorReason.CONVERSATION_NOT_FOUND

    def __init__(self, conv_id: str) -> None:
        super().__init__("conversation not found", {"convId": conv_id})


class InvalidArgument(MailpoolError):
    """A request that can never succeed as sent; the message names the field(s)."""

    reason = ErrorReason.INVALID_ARGUMENT

    def __init__(
        self,
        message: str,
        violations: list[FieldViolation],
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.violations = violations

    @classmethod
    def of(cls, field_name: str, description: str) -> InvalidArgument:
        return cls(
            f"{field_name}: {description}",
            [FieldViolation(field_name, description)],
            {"field": field_name},
        )


class MutuallyExclusiveFields(InvalidArgument):
    reason = ErrorReason.MUTUALLY_EXCLUSIVE_FIELDS

    def __init__(self, first: str, others: list[str]) -> None:
        names = [first, *others]
        description = f"{first} is mutually exclusive with {', '.join(others)}"
        super().__init__(
            description,
            [FieldViolation(name, description) for name in names],
            {"fields": ",".join(names)},
        )


class IdempotencyKeyMalformed(InvalidArgument):
    reason = ErrorReason.IDEMPOTENCY_KEY_MALFORMED

    def __init__(self) -> None:
        super().__init__(
            "malformed Idempotency-Key",
            [FieldViolation("Idempotency-Key", "must be 1..255 printable ASCII characters")],
        )


class Conflict(MailpoolError):
    pass


class IdempotencyKeyReused(Conflict):
    reason = ErrorReason.IDEMPOTENCY_KEY_REUSED

    def __init__(self) -> None:
        super().__init__("Idempotency-Key reused with a different body")


class IdempotencyKeyInUse(Conflict):
    reason = ErrorReason.IDEMPOTENCY_KEY_IN_USE

    def __init__(self) -> None:
        super().__init__("Idempotency-Key in use")


class OutOfRange(MailpoolError):
    pass


class SeqInFuture(OutOfRange):
    reason = ErrorReason.SEQ_IN_FUTURE

    def __init__(self, handle: str, since: int, head: int) -> None:
        super().__init__(
            f"since {since} is beyond the head seq {head} of {handle}",
            {"handle": handle, "since": str(since), "head": str(head)},
        )


class Unavailable(MailpoolError):
    pass


class SubscriberStalled(Unavailable):
    reason = ErrorReason.SUBSCRIBER_STALLED

    def __init__(self, last_seqs: dict[str, int]) -> None:
        super().__init__(
            "subscriber stopped reading; resume from the last seq received",
            {handle: str(seq) for handle, seq in last_seqs.items()},
        )


class StoreContention(Unavailable):
    """The database aborted the transaction in a race (e.g. a deadlock); retry."""

    reason = ErrorReason.CONTENTION

    def __init__(self, detail: str) -> None:
        super().__init__("the request lost a race in the database; retry it", {"sqlstate": detail})


class ShuttingDown(Unavailable):
    reason = ErrorReason.SHUTTING_DOWN

    def __init__(self) -> None:
        super().__init__("server is shutting down; reconnect with the last seq received")


@dataclass
class AdminError(Exception):
    """An operator command that cannot be carried out (CLI only)."""

    message: str
    hints: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


class ResourceExhausted(MailpoolError):
    pass


class AllRecipientsRejected(ResourceExhausted):
    """Every recipient of a send was rejected. Carries the full per-recipient result
    (rendered as the 429 body) and, for caps, how long until they reset."""

    def __init__(self, result: SendResult, reason: ErrorReason, retry_after_ms: int | None) -> None:
        super().__init__(
            f"all recipients rejected ({reason.value.lower()})", {"identity": result.identity}
        )
        self.result = result
        self.reason = reason
        self.retry_after_ms = retry_after_ms
        self.tier: Tier | None = None  # of the identity, for metrics


class PendingSendNotFound(NotFound):
    reason = ErrorReason.PENDING_SEND_NOT_FOUND

    def __init__(self, pending_id: str) -> None:
        super().__init__("pending send not found", {"pendingId": pending_id})


class FailedPrecondition(MailpoolError):
    """The request is fine but the state of what it names does not allow it."""


class SendAlreadyDispatched(FailedPrecondition):
    reason = ErrorReason.SEND_ALREADY_DISPATCHED

    def __init__(self, pending_id: str, status: str) -> None:
        super().__init__("send already dispatched", {"pendingId": pending_id, "status": status})
