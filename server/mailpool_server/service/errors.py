"""Domain errors, carrying the contract's exact texts and a stable reason.

The reason strings are the names of proto enum mailpool.v1.ErrorReason without its
prefix; rpc/status.py maps each class to a gRPC code, and the shim maps codes to HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailpool_server.service.models import SendResult


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field, named as the HTTP contract names it."""

    field: str
    description: str


class MailpoolError(Exception):
    """Base of every error a client may see; `message` is the contract's text."""

    reason: str = "INTERNAL"

    def __init__(self, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, str] = details or {}


class Unauthenticated(MailpoolError):
    pass


class ApiKeyMissing(Unauthenticated):
    reason = "API_KEY_MISSING"

    def __init__(self) -> None:
        super().__init__("missing api key")


class ApiKeyMalformed(Unauthenticated):
    reason = "API_KEY_MALFORMED"

    def __init__(self) -> None:
        super().__init__("invalid api key format")


class ApiKeyInvalid(Unauthenticated):
    reason = "API_KEY_INVALID"

    def __init__(self) -> None:
        super().__init__("invalid api key")


class NotFound(MailpoolError):
    pass


class IdentityNotFound(NotFound):
    reason = "IDENTITY_NOT_FOUND"

    def __init__(self, handle: str) -> None:
        super().__init__("identity not found in org", {"handle": handle})


class ConversationNotFound(NotFound):
    reason = "CONVERSATION_NOT_FOUND"

    def __init__(self, conv_id: str) -> None:
        super().__init__("conversation not found", {"convId": conv_id})


class InvalidArgument(MailpoolError):
    """A request that can never succeed as sent; the message names the field(s)."""

    reason = "INVALID_ARGUMENT"

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
    reason = "MUTUALLY_EXCLUSIVE_FIELDS"

    def __init__(self, first: str, others: list[str]) -> None:
        names = [first, *others]
        description = f"{first} is mutually exclusive with {', '.join(others)}"
        super().__init__(
            description,
            [FieldViolation(name, description) for name in names],
            {"fields": ",".join(names)},
        )


class IdempotencyKeyMalformed(InvalidArgument):
    reason = "IDEMPOTENCY_KEY_MALFORMED"

    def __init__(self) -> None:
        super().__init__(
            "malformed Idempotency-Key",
            [FieldViolation("Idempotency-Key", "must be 1..255 printable ASCII characters")],
        )


class Conflict(MailpoolError):
    pass


class IdempotencyKeyReused(Conflict):
    reason = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self) -> None:
        super().__init__("Idempotency-Key reused with a different body")


class IdempotencyKeyInUse(Conflict):
    reason = "IDEMPOTENCY_KEY_IN_USE"

    def __init__(self) -> None:
        super().__init__("Idempotency-Key in use")


class OutOfRange(MailpoolError):
    pass


class SeqInFuture(OutOfRange):
    reason = "SEQ_IN_FUTURE"

    def __init__(self, handle: str, since: int, head: int) -> None:
        super().__init__(
            f"since {since} is beyond the head seq {head} of {handle}",
            {"handle": handle, "since": str(since), "head": str(head)},
        )


class Unavailable(MailpoolError):
    pass


class SubscriberStalled(Unavailable):
    reason = "SUBSCRIBER_STALLED"

    def __init__(self, last_seqs: dict[str, int]) -> None:
        super().__init__(
            "subscriber stopped reading; resume from the last seq received",
            {handle: str(seq) for handle, seq in last_seqs.items()},
        )


class StoreContention(Unavailable):
    """The database aborted the transaction in a race (e.g. a deadlock); retry."""

    reason = "CONTENTION"

    def __init__(self, detail: str) -> None:
        super().__init__("the request lost a race in the database; retry it", {"sqlstate": detail})


class ShuttingDown(Unavailable):
    reason = "SHUTTING_DOWN"

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

    def __init__(self, result: SendResult, reason: str, retry_after_ms: int | None) -> None:
        super().__init__(f"all recipients rejected ({reason.lower()})")
        self.result = result
        self.reason = reason
        self.retry_after_ms = retry_after_ms
