"""Typed errors, decoded from the rich `google.rpc.Status` every mailpool error carries.

The server packs the status into the `grpc-status-details-bin` trailer: an `ErrorInfo`
(reason, domain "mailpool", metadata), `BadRequest` field violations for validation errors,
`RetryInfo` for caps, and for a send whose every recipient was rejected the
`mailpool.v1.SendResponse` itself. The trailer is parsed here rather than with grpcio-status,
which saves callers a dependency and works for the sync and the async API alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, TypeVar, cast

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from mailpool.v1 import send_pb2, send_service_pb2
from mailpool_client.reasons import Reason

DOMAIN = "mailpool"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class FieldViolation:
    """One entry of google.rpc.BadRequest: the request field (as the HTTP contract names it,
    e.g. "convId") and what is wrong with it."""

    field: str
    description: str


@dataclass(frozen=True)
class Rejection:
    """One rejected recipient of a send: the address as given and the contract's reason
    string ("cap_exceeded", "no_accounts", "inactive", "suspended", "do_not_contact",
    "invalid_recipient")."""

    to: str
    reason: str


class MailpoolError(Exception):
    """A failed mailpool call.

    Branch on the class (one per gRPC code, see below) and on `reason`, never on `message`.

    Attributes:
        code: the gRPC status code.
        reason: the `ErrorInfo.reason`, a `Reason` member when this client knows it (a newer
            server may send others, kept as plain strings); "" when the failure did not come
            from mailpool (a connection refused, a deadline passed in the client).
        message: the error text, the HTTP contract's exact `error` string.
        metadata: the `ErrorInfo.metadata` (the HTTP body's `details`), e.g. {"handle": ...}.
        retry_delay: how long to wait before trying again, from `RetryInfo` (caps: until
            midnight UTC), or None.
        status: the decoded google.rpc.Status, or None when the call carried none.
        attempts: how many attempts the client made before giving up (1 without retries).
    """

    code: grpc.StatusCode
    reason: str
    message: str
    metadata: dict[str, str]
    retry_delay: dt.timedelta | None
    status: Any  # google.rpc.status_pb2.Status | None (google.rpc ships no typing marker)
    attempts: int

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        metadata: dict[str, str] | None = None,
        retry_delay: dt.timedelta | None = None,
        *,
        status: Any = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata = dict(metadata or {})
        self.retry_delay = retry_delay
        self.status = status
        self.attempts = attempts

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {str(self.reason)!r}, {self.message!r})"

    @property
    def retryable(self) -> bool:
        """True for the codes a retry can fix by itself (UNAVAILABLE, DEADLINE_EXCEEDED).
        A send retried with the same idempotency key never executes twice."""
        return self.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

    def detail(self, kind: type[M]) -> M | None:
        """The first status detail of this message type, unpacked, or None."""
        if self.status is None:
            return None
        for packed in self.status.details:
            if packed.Is(kind.DESCRIPTOR):
                value = kind()
                packed.Unpack(value)
                return value
        return None


class Unauthenticated(MailpoolError):
    """UNAUTHENTICATED: no key (API_KEY_MISSING), a malformed one (API_KEY_MALFORMED), or an
    unknown, revoked or expired one (API_KEY_INVALID)."""


class PermissionDenied(MailpoolError):
    """PERMISSION_DENIED (mailpool answers another org's resources with NOT_FOUND instead)."""


class NotFound(MailpoolError):
    """NOT_FOUND: IDENTITY_NOT_FOUND (metadata "handle") or CONVERSATION_NOT_FOUND
    (metadata "convId")."""


class InvalidArgument(MailpoolError):
    """INVALID_ARGUMENT: the request is wrong (INVALID_ARGUMENT, MUTUALLY_EXCLUSIVE_FIELDS,
    IDEMPOTENCY_KEY_MALFORMED); `field_violations` names each field."""

    @cached_property
    def field_violations(self) -> list[FieldViolation]:
        """The google.rpc.BadRequest field violations, in the server's order."""
        bad_request = self.detail(error_details_pb2.BadRequest)
        if bad_request is None:
            return []
        return [
            FieldViolation(str(v.field), str(v.description)) for v in bad_request.field_violations
        ]


class OutOfRange(MailpoolError):
    """OUT_OF_RANGE: SEQ_IN_FUTURE, a `since` beyond the identity's head (metadata "handle",
    "since", "head")."""


class Conflict(MailpoolError):
    """ABORTED: IDEMPOTENCY_KEY_REUSED (the key was used for a different request) or
    IDEMPOTENCY_KEY_IN_USE (its first request still runs after 10 s; retry later)."""


class ResourceExhausted(MailpoolError):
    """RESOURCE_EXHAUSTED without a per-recipient result."""


class AllRecipientsRejected(ResourceExhausted):
    """RESOURCE_EXHAUSTED from Send: every recipient was rejected (CAP_EXCEEDED, NO_ACCOUNTS,
    RECIPIENTS_REJECTED). `response` is the full SendResponse (accepted 0) the server packed
    as a detail, `rejections` its per-recipient reasons; for caps `retry_delay` says how long
    until midnight UTC, when they reset."""

    @cached_property
    def response(self) -> send_service_pb2.SendResponse:
        """The per-recipient result, as a successful send would have returned it."""
        return self.detail(send_service_pb2.SendResponse) or send_service_pb2.SendResponse()

    @property
    def rejections(self) -> list[Rejection]:
        """Each rejected recipient with the contract's reason string."""
        return [
            Rejection(r.to, reject_reason_name(r.reject_reason))
            for r in self.response.results
            if r.status == send_pb2.RECIPIENT_STATUS_REJECTED
        ]


class Unavailable(MailpoolError):
    """UNAVAILABLE: the server could not be reached or is stopping (SHUTTING_DOWN), the
    database lost a race (CONTENTION), or a stream subscriber stalled (SUBSCRIBER_STALLED).
    Retryable: `send` retries it with the same idempotency key, streams reconnect."""


class DeadlineExceeded(MailpoolError):
    """DEADLINE_EXCEEDED: the call's time ran out (in the client; retryable)."""


class Cancelled(MailpoolError):
    """CANCELLED: the call was cancelled."""


class Internal(MailpoolError):
    """INTERNAL or UNKNOWN: a bug in mailpool, never a bad request. metadata["requestId"]
    finds it in the server's logs; a send is safe to retry with the same idempotency key."""


_BY_CODE: dict[grpc.StatusCode, type[MailpoolError]] = {
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNKNOWN: Internal,
    grpc.StatusCode.DATA_LOSS: Internal,
}


def reject_reason_name(value: int) -> str:
    """REJECT_REASON_CAP_EXCEEDED → "cap_exceeded", the HTTP contract's string."""
    return send_pb2.RejectReason.Name(cast(Any, value)).removeprefix("REJECT_REASON_").lower()


def as_reason(value: str) -> str:
    """The `Reason` member for a known reason string, else the string itself."""
    try:
        return Reason(value)
    except ValueError:
        return value


class FailedCall(Protocol):
    """What a failed gRPC call offers (grpc.aio.AioRpcError, or a sync grpc.RpcError that
    is also a grpc.Call)."""

    def code(self) -> grpc.StatusCode: ...
    def details(self) -> str | None: ...
    def trailing_metadata(self) -> Any: ...


def _rich_status(call: FailedCall) -> Any:
    for key, value in call.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except DecodeError:
                return None
            # A status whose code disagrees with the call's belongs to someone else
            # (a proxy that rewrote the code): do not trust its details.
            return status if status.code == call.code().value[0] else None
    return None


def from_call(call: FailedCall, *, attempts: int = 1) -> MailpoolError:
    """The typed error for a failed call: the class by gRPC code (AllRecipientsRejected when
    a RESOURCE_EXHAUSTED carries a SendResponse), the fields from its rich status."""
    code = call.code()
    status = _rich_status(call)
    reason, metadata = "", {}
    retry_delay: dt.timedelta | None = None
    has_send_response = False
    message = call.details() or ""
    if status is not None:
        message = str(status.message) or message
        for packed in status.details:
            if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                if not reason or info.domain == DOMAIN:
                    reason, metadata = str(info.reason), dict(info.metadata)
            elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                packed.Unpack(retry)
                retry_delay = retry.retry_delay.ToTimedelta()
            elif packed.Is(send_service_pb2.SendResponse.DESCRIPTOR):
                has_send_response = True
    cls = _BY_CODE.get(code, MailpoolError)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and has_send_response:
        cls = AllRecipientsRejected
    return cls(
        code,
        as_reason(reason),
        message,
        metadata,
        retry_delay,
        status=status,
        attempts=attempts,
    )
