"""The live tail: StreamEvents, with the session's key, relayed to the browser as
server-sent events.

Each event goes out with `id: <seq>`. The browser's EventSource remembers the last id
it received and sends it back as Last-Event-ID when it reconnects, and the stream
resumes right after it: StreamEvents is gap-free and in order from any seq, so the
browser sees every event once, whatever broke in between (the shim's connection to the
server, the server restarting, the browser's network). The caught-up marker is a named
event (no id, so it moves nothing) and heartbeats are comments that keep proxies from
closing an idle connection.

Failures the browser should retry (the server unreachable) answer 200 with nothing
but a retry delay, because an EventSource gives up for good on any other status;
failures it cannot fix (signed out, no such identity) answer with their status so
that it does give up, and the page says why.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import grpc
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from mailpool.v1 import event_service_pb2
from mailpool_server.rest import render
from mailpool_server.rest.event_summary import summary
from mailpool_server.rest.ui.dashboard import Dashboard
from mailpool_server.rest.ui.views import conversation_url

RETRY_MS = 2000
_SEQ = re.compile(r"[0-9]{1,18}")
GIVE_UP = {
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 409,
}
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def encode(handle: str, response: event_service_pb2.StreamEventsResponse) -> str:
    kind = response.WhichOneof("message")
    if kind == "event":
        event = response.event
        envelope = render.event(event)
        data = {
            "seq": event.seq,
            "type": event.type,
            "at": envelope["createdAtIso"],
            "convId": event.conv_id or None,
            "url": conversation_url(handle, event.conv_id) if event.conv_id else None,
            "summary": summary(envelope),
        }
        return f"id: {event.seq}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
    if kind == "caught_up":
        heads = {h.identity: h.seq for h in response.caught_up.heads}
        return f"event: caught-up\ndata: {json.dumps({'heads': heads})}\n\n"
    return ": heartbeat\n\n"


def _since(request: Request) -> int | None:
    """Last-Event-ID (a reconnect) wins over ?since= (the page's first connection)."""
    given = request.headers.get("last-event-id") or request.query_params.get("since") or "0"
    return int(given) if _SEQ.fullmatch(given.strip()) else None


async def stream(dashboard: Dashboard, request: Request) -> Response:
    session = dashboard.session_of(request)
    if session is None:
        return PlainTextResponse("signed out", status_code=401, headers=HEADERS)
    since = _since(request)
    if since is None:
        return PlainTextResponse("since: not a seq", status_code=400, headers=HEADERS)
    handle = request.path_params["handle"]
    call = dashboard.events.StreamEvents(
        event_service_pb2.StreamEventsRequest(identity=handle, since=since),
        metadata=dashboard.metadata(session),
    )
    try:
        # The first message (the backlog's first event, or caught_up) comes at once:
        # reading it before answering turns a refused call into a status.
        first = await call.read()
    except grpc.aio.AioRpcError as error:
        call.cancel()
        status = GIVE_UP.get(error.code())
        if status == 401:
            dashboard.sessions.delete(session.id)
        if status is not None:
            return PlainTextResponse(error.details() or "", status_code=status, headers=HEADERS)
        return _retry_later()
    session_id = session.id

    async def body() -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        message = first
        try:
            while message is not grpc.aio.EOF:
                assert isinstance(message, event_service_pb2.StreamEventsResponse)
                # Signing out (or the session expiring) ends what it opened.
                if dashboard.sessions.get(session_id) is None:
                    return
                yield encode(handle, message)
                message = await _next(call, dashboard.closing)
        except grpc.aio.AioRpcError:
            return  # the server went away: the browser reconnects with Last-Event-ID
        finally:
            call.cancel()

    return StreamingResponse(body(), media_type="text/event-stream", headers=HEADERS)


def _retry_later() -> Response:
    return Response(f"retry: {RETRY_MS}\n\n", media_type="text/event-stream", headers=HEADERS)


async def _next(
    call: grpc.aio.UnaryStreamCall[
        event_service_pb2.StreamEventsRequest, event_service_pb2.StreamEventsResponse
    ],
    closing: asyncio.Event,
) -> object:
    """The stream's next message, or EOF once the shim is stopping."""
    if closing.is_set():
        return grpc.aio.EOF
    read = asyncio.ensure_future(call.read())
    stop = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        read.cancel()  # the browser went away
        raise
    finally:
        stop.cancel()
    if not read.done():
        read.cancel()
        return grpc.aio.EOF
    return read.result()
