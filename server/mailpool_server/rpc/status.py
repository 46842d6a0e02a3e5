"""Domain error → rich google.rpc.Status: one table, by error class."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from mailpool_server.rpc.encode import send_response
from mailpool_server.service import errors

DOMAIN = "mailpool"
# Details echo what the client sent (a handle, a conv id). Echoed back whole, a 20 KB
# value would overflow the status trailer and turn a clean NOT_FOUND into a transport
# error, so each value is cut to this many characters.
MAX_ECHO = 200


def _cut(value: str, limit: int = MAX_ECHO) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


# The most specific class wins (the lookup walks the MRO).
GRPC_CODES: dict[type[errors.MailpoolError], grpc.StatusCode] = {
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Conflict: grpc.StatusCode.ABORTED,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.MailpoolError: grpc.StatusCode.INTERNAL,
}


def grpc_code(error: errors.MailpoolError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in GRPC_CODES:
            return GRPC_CODES[cls]
    return grpc.StatusCode.INTERNAL


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rich_status(
    code: grpc.StatusCode,
    message: str,
    reason: errors.ErrorReason,
    metadata: dict[str, str],
    *,
    violations: Sequence[errors.FieldViolation] = (),
    retry_after_ms: int | None = None,
    extra_details: Sequence[Message] = (),
) -> status_pb2.Status:
    """A google.rpc.Status with ErrorInfo, and BadRequest / RetryInfo when they apply."""
    status = status_pb2.Status(code=code.value[0], message=_cut(message, 4 * MAX_ECHO))
    info = error_details_pb2.ErrorInfo(
        reason=reason.value,
        domain=DOMAIN,
        metadata={key: _cut(value) for key, value in metadata.items()},
    )
    status.details.append(_pack(info))
    if violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=_cut(v.field), description=_cut(v.description, 4 * MAX_ECHO)
                )
                for v in violations
            ]
        )
        status.details.append(_pack(bad_request))
    if retry_after_ms is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(retry_after_ms)
        status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    for detail in extra_details:
        status.details.append(_pack(detail))
    return status


def status_for(error: errors.MailpoolError) -> status_pb2.Status:
    """Every domain error's status: its code from the table, the contract text, and the
    details its class carries (field violations; a whole rejection's per-recipient
    result, which the shim renders as the 429 body)."""
    violations = error.violations if isinstance(error, errors.InvalidArgument) else []
    extra: list[Message] = []
    if isinstance(error, errors.AllRecipientsRejected):
        extra.append(send_response(error.result))
    return rich_status(
        grpc_code(error),
        error.message,
        error.reason,
        error.details,
        violations=violations,
        retry_after_ms=error.retry_after_ms,
        extra_details=extra,
    )


def internal_status(request_id: str) -> status_pb2.Status:
    return rich_status(
        grpc.StatusCode.INTERNAL,
        "internal error",
        errors.ErrorReason.INTERNAL,
        {"requestId": request_id},
    )
