"""The HTTP shim's routes. Each handler: parse → one gRPC call → render."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailpool.v1 import (
    conversation_service_pb2,
    conversation_service_pb2_grpc,
    event_service_pb2_grpc,
    identity_service_pb2_grpc,
    send_service_pb2,
    send_service_pb2_grpc,
)
from mailpool_server.logs import REQUEST_ID_KEY, request_id
from mailpool_server.metrics import Metrics
from mailpool_server.rest import parse, render
from mailpool_server.rest.metadata import CALL_TIMEOUT_S, MAX_AUTHORIZATION, printable
from mailpool_server.rest.middleware import RequestContext
from mailpool_server.rest.openapi import document as openapi_document
from mailpool_server.rest.status import error_response, rpc_error_response
from mailpool_server.rest.ui.routes import build as ui_routes_of
from mailpool_server.service.limits import MAX_LONG_POLL_MS

log = logging.getLogger("mailpool.rest")

MAX_BODY = 1024 * 1024


def _metadata(request: Request) -> list[tuple[str, str]]:
    # Every Authorization header goes on, so the server (which refuses more than one)
    # decides for HTTP and gRPC callers alike which one counts. The request id (set by
    # RequestContext) goes on too: one id in the shim's and the server's logs.
    return [
        *(
            ("authorization", printable(value[:MAX_AUTHORIZATION]))
            for value in request.headers.getlist("authorization")
        ),
        (REQUEST_ID_KEY, request_id.get()),
    ]


async def _json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise _HttpError(415, "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _HttpError(413, "request body is larger than 1 MiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _HttpError(413, "request body is larger than 1 MiB")
    return parse.json_object(bytes(body))


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """Shim-level failures and failed calls → the contract's error shape."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except _HttpError as error:
            return error_response(error.status, error.message)
        except parse.BadRequest as error:
            return error_response(400, error.message, error.details)
        except grpc.aio.AioRpcError as error:
            status, response = rpc_error_response(error)
            if status >= 500:
                log.warning("upstream call failed", extra={"fields": {"code": str(error.code())}})
            return response

    return guarded


class Shim:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._send = send_service_pb2_grpc.SendServiceStub(channel)
        self._conversations = conversation_service_pb2_grpc.ConversationServiceStub(channel)
        self._events = event_service_pb2_grpc.EventServiceStub(channel)
        self._identities = identity_service_pb2_grpc.IdentityServiceStub(channel)

    async def send(self, request: Request) -> Response:
        body = await _json_body(request)
        message = parse.send_request(
            request.path_params["handle"], body, request.headers.get("idempotency-key")
        )
        call = self._send.Send(message, metadata=_metadata(request), timeout=CALL_TIMEOUT_S)
        response = await call
        headers = {}
        for key, value in await call.initial_metadata() or ():
            if key == "idempotent-replayed" and value == "true":
                headers["Idempotent-Replayed"] = "true"
        return JSONResponse(render.send_response(response), headers=headers)

    async def list_conversations(self, request: Request) -> Response:
        message = parse.list_conversations(request.path_params["handle"], request.query_params)
        response = await self._conversations.ListConversations(
            message, metadata=_metadata(request), timeout=CALL_TIMEOUT_S
        )
        return JSONResponse(render.conversation_list(response))

    async def get_conversation(self, request: Request) -> Response:
        message = conversation_service_pb2.GetConversationRequest(
            identity=request.path_params["handle"], conv_id=request.path_params["conv_id"]
        )
        response = await self._conversations.GetConversation(
            message, metadata=_metadata(request), timeout=CALL_TIMEOUT_S
        )
        return JSONResponse(render.conversation_detail(response))

    async def archive_conversation(self, request: Request) -> Response:
        # No body is read: the path says everything (a body, if any, is ignored).
        response = await self._conversations.ArchiveConversation(
            conversation_service_pb2.ArchiveConversationRequest(
                identity=request.path_params["handle"], conv_id=request.path_params["conv_id"]
            ),
            metadata=_metadata(request),
            timeout=CALL_TIMEOUT_S,
        )
        return JSONResponse(render.conversation_detail(response))

    async def unarchive_conversation(self, request: Request) -> Response:
        response = await self._conversations.UnarchiveConversation(
            conversation_service_pb2.UnarchiveConversationRequest(
                identity=request.path_params["handle"], conv_id=request.path_params["conv_id"]
            ),
            metadata=_metadata(request),
            timeout=CALL_TIMEOUT_S,
        )
        return JSONResponse(render.conversation_detail(response))

    async def add_labels(self, request: Request) -> Response:
        labels = parse.labels(await _json_body(request))
        response = await self._conversations.AddLabels(
            conversation_service_pb2.AddLabelsRequest(
                identity=request.path_params["handle"],
                conv_id=request.path_params["conv_id"],
                labels=labels,
            ),
            metadata=_metadata(request),
            timeout=CALL_TIMEOUT_S,
        )
        return JSONResponse(render.conversation_detail(response))

    async def remove_labels(self, request: Request) -> Response:
        labels = parse.labels(await _json_body(request))
        response = await self._conversations.RemoveLabels(
            conversation_service_pb2.RemoveLabelsRequest(
                identity=request.path_params["handle"],
                conv_id=request.path_params["conv_id"],
                labels=labels,
            ),
            metadata=_metadata(request),
            timeout=CALL_TIMEOUT_S,
        )
        return JSONResponse(render.conversation_detail(response))

    async def cancel_send(self, request: Request) -> Response:
        # No body is read: the path names the send.
        response = await self._send.CancelSend(
            send_service_pb2.CancelSendRequest(
                identity=request.path_params["handle"],
                pending_id=request.path_params["pending_id"],
            ),
            metadata=_metadata(request),
            timeout=CALL_TIMEOUT_S,
        )
        return JSONResponse(render.cancelled_send(response))

    async def label_stats(self, request: Request) -> Response:
        response = await self._conversations.GetLabelStats(
            conversation_service_pb2.GetLabelStatsRequest(identity=request.path_params["handle"]),
            metadata=_metadata(request),
            timeout=CALL_TIMEOUT_S,
        )
        return JSONResponse(render.label_stats(response))

    async def usage_history(self, request: Request) -> Response:
        message = parse.usage_history(request.path_params["handle"], request.query_params)
        response = await self._identities.GetUsageHistory(
            message, metadata=_metadata(request), timeout=CALL_TIMEOUT_S
        )
        return JSONResponse(render.usage_history(response))

    async def list_events(self, request: Request) -> Response:
        message = parse.list_events(request.path_params["handle"], request.query_params)
        timeout = CALL_TIMEOUT_S + max(0, min(message.timeout_ms, MAX_LONG_POLL_MS)) / 1000
        response = await self._events.ListEvents(
            message, metadata=_metadata(request), timeout=timeout
        )
        return JSONResponse(render.event_list(response))


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    messages = {404: "not found", 405: "method not allowed"}
    response = error_response(error.status_code, messages.get(error.status_code, error.detail))
    if error.headers:
        response.headers.update(error.headers)
    return response


async def _internal(request: Request, error: Exception) -> Response:
    log.exception("shim error", exc_info=error)
    return error_response(500, "internal error")


def build_app(
    channel: grpc.aio.Channel, metrics: Metrics | None = None, *, ui: bool = True
) -> Starlette:
    """The shim's routes, and the dashboard's under /ui/ unless `ui` is off (then /ui/
    is a 404 like any unknown path). app.state.dashboard is the dashboard, or None."""
    shim = Shim(channel)
    base = "/v1/identities/{handle}"
    dashboard, ui_routes = ui_routes_of(channel) if ui else (None, [])
    app = Starlette(
        routes=[
            Route(f"{base}/send", _guarded(shim.send), methods=["POST"]),
            Route(f"{base}/conversations", _guarded(shim.list_conversations), methods=["GET"]),
            Route(
                f"{base}/conversations/{{conv_id}}",
                _guarded(shim.get_conversation),
                methods=["GET"],
            ),
            Route(
                f"{base}/conversations/{{conv_id}}/archive",
                _guarded(shim.archive_conversation),
                methods=["POST"],
            ),
            Route(
                f"{base}/conversations/{{conv_id}}/unarchive",
                _guarded(shim.unarchive_conversation),
                methods=["POST"],
            ),
            # Removal is a POST with a body rather than DELETE …/labels/{label}: a label
            # may hold any printable character, "/" included, which a path segment
            # cannot carry (the router decodes %2F before matching).
            Route(
                f"{base}/conversations/{{conv_id}}/labels",
                _guarded(shim.add_labels),
                methods=["POST"],
            ),
            Route(
                f"{base}/conversations/{{conv_id}}/labels/remove",
                _guarded(shim.remove_labels),
                methods=["POST"],
            ),
            Route(
                f"{base}/sends/{{pending_id}}/cancel", _guarded(shim.cancel_send), methods=["POST"]
            ),
            Route(f"{base}/labels/stats", _guarded(shim.label_stats), methods=["GET"]),
            Route(f"{base}/usage", _guarded(shim.usage_history), methods=["GET"]),
            Route(f"{base}/events", _guarded(shim.list_events), methods=["GET"]),
            Route("/openapi.json", _openapi, methods=["GET"]),
            *ui_routes,
        ],
        exception_handlers={HTTPException: _http_error, Exception: _internal},
        middleware=[Middleware(RequestContext, metrics=metrics)],
    )
    app.state.dashboard = dashboard
    return app
