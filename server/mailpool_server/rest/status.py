"""gRPC status → HTTP response: one table by code, refined by ErrorInfo reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from starlette.responses import JSONResponse

from mailpool.v1 import send_service_pb2
from mailpool_server.rest import render

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    # The state of what the request names forbids it (a send already being delivered):
    # a conflict with the resource, not a malformed request.
    grpc.StatusCode.FAILED_PRECONDITION: 409,
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


# Errors whose body is not {"error", "details"} but a rendering of one of the status's
# details: a whole rejection answers 429 with the send response's own shape.
BODY_FROM_DETAIL: list[tuple[type[Any], Callable[[Any], Any]]] = [
    (send_service_pb2.SendResponse, render.send_response),
]


def rpc_error_response(error: grpc.aio.AioRpcError) -> tuple[int, JSONResponse]:
    """(HTTP status, response) of a failed call: the status by code (refined by
    ErrorInfo reason), the body the contract's error shape or a detail's rendering."""
    code = error.code()
    status = rpc_status.from_call(error)
    reason, details = "", {}
    message = error.details() or "internal error"
    body = None
    if status is not None:
        message = status.message
        info = _unpack(status, error_details_pb2.ErrorInfo)
        if info is not None:
            reason, details = info.reason, dict(info.metadata)
        for kind, render_detail in BODY_FROM_DETAIL:
            if (detail := _unpack(status, kind)) is not None:
                body = render_detail(detail)
                break
    http = HTTP_STATUS_BY_REASON.get((code, reason), HTTP_STATUS.get(code, 500))
    if http >= 500 and status is None:
        message = (
            "upstream unavailable" if code == grpc.StatusCode.UNAVAILABLE else "internal error"
        )
    if body is None:
        body = error_body(message, details or None)
    return http, JSONResponse(body, status_code=http)
