"""The shim's one middleware: the request id (taken from X-Request-Id when usable,
returned on every response, forwarded to gRPC as x-request-id) and, when metrics are
on, each request's duration by route template (not the raw path: identity handles and
conversation ids would make every path a new series)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailpool_server.logs import REQUEST_ID_KEY, accept_request_id, request_id
from mailpool_server.metrics import Metrics

_HEADER = REQUEST_ID_KEY.encode()
UNMATCHED = "unmatched"


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = None
        for key, value in scope["headers"]:
            if key == _HEADER:
                given = value
                break
        rid = accept_request_id(given)
        request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != _HEADER]
                message["headers"] = [*headers, (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            if self._metrics is not None:
                route = scope.get("route")
                template = getattr(route, "path", None) or UNMATCHED
                self._metrics.http_done(
                    template, scope["method"], status, time.perf_counter() - started
                )
