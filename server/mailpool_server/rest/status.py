"""gRPC status → HTTP response: one table by code, refined by ErrorInfo reason."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from starlette.responses import JSONResponse

from mailpool.v1 import send_service_pb2

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
# Where a reason needs another status than its code's (none today; the hook is here
# so that such a case is one table row, not a branch in a handler).
HTTP_STATUS_BY_REASON: dict[tuple[grpc.StatusCode, str], int] = {}


def error_body(message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return body


def error_response(
    status: int, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(message, details), status_code=status)


def _unpack(status: status_pb2.Status, kind: type[Any]) -> Any | None:
    for packed in status.details:
        if packed.Is(kind.DESCRIPTOR):
            value = kind()
            packed.Unpack(value)
            return value
    return None


def rpc_error_parts(
    error: grpc.aio.AioRpcError,
) -> tuple[int, str, dict[str, str], send_service_pb2.SendResponse | None]:
    """(HTTP status, message, details, rejected-send body) of a failed call."""
    code = error.code()
    status = rpc_status.from_call(error)
    reason, details, rejected = "", {}, None
    message = error.details() or "internal error"
    if status is not None:
        message = status.message
        info = _unpack(status, error_details_pb2.ErrorInfo)
        if info is not None:
            reason, details = info.reason, dict(info.metadata)
        rejected = _unpack(status, send_service_pb2.SendResponse)
    http = HTTP_STATUS_BY_REASON.get((code, reason), HTTP_STATUS.get(code, 500))
    if http >= 500 and status is None:
        message = (
            "upstream unavailable" if code == grpc.StatusCode.UNAVAILABLE else "internal error"
        )
    return http, message, details, rejected
