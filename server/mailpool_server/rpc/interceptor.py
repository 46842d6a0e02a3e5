"""One interceptor for every mailpool RPC: request id, API key, error mapping, logs.

Servicers stay short: they read the caller's org from `current_org()` and raise
domain errors; this module turns those into rich statuses. Health and reflection
stay open (no key), so that probes and grpcurl-style tools work.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc
from grpc_status import rpc_status

from mailpool_server.logs import REQUEST_ID_KEY, accept_request_id, request_id
from mailpool_server.metrics import Metrics
from mailpool_server.rpc.request_check import check_request, tolerant
from mailpool_server.rpc.stall_watch import StallWatch
from mailpool_server.rpc.status import internal_status, status_for
from mailpool_server.service.auth import Authenticator
from mailpool_server.service.errors import ApiKeyMalformed, MailpoolError
from mailpool_server.service.timer import LoopTimer, Timer

log = logging.getLogger("mailpool.rpc")

_org: contextvars.ContextVar[str] = contextvars.ContextVar("org_id")
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
LIST_EVENTS = "/mailpool.v1.EventService/ListEvents"
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def current_org() -> str:
    """The org of the API key of the call being served."""
    return _org.get()


# Strings: the grpc classes are generic only in their type stubs, not at run time.
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
UnaryBehaviour: TypeAlias = "Callable[[Any, Context], Awaitable[Any]]"
StreamBehaviour: TypeAlias = "Callable[[Any, Context], AsyncGenerator[Any, None]]"
StreamCall: TypeAlias = "Callable[[Any, Context], Awaitable[None]]"


# A stream that cannot hand the client one more message for this long is ended, so a
# stalled subscriber holds neither a server task nor anything in memory.
DEFAULT_STALL_S = 60.0
# A stream checks its API key again when it writes and this long has passed since the
# last check. Idle streams write a heartbeat every heartbeat period, so a revoked key
# ends its streams within one heartbeat period (and at once on a busy stream).
DEFAULT_REAUTH_S = 7.5


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        authenticator: Authenticator,
        *,
        stall_s: float = DEFAULT_STALL_S,
        reauth_s: float = DEFAULT_REAUTH_S,
        timer: Timer | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._auth = authenticator
        self._timer = timer or LoopTimer()
        self._stalls = StallWatch(stall_s, self._timer)
        self._reauth_s = reauth_s
        self._wrapped: dict[str, Handler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: Handler) -> Handler:
        """The method's handler inside the checks. Made once per method: the closures
        and handler objects would otherwise be built again on every call."""
        open_method = method.startswith(OPEN_PREFIXES)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, cast(UnaryBehaviour, handler.unary_unary), open_method),
                request_deserializer=tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, cast(StreamBehaviour, handler.unary_stream), open_method),
                request_deserializer=tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler  # reflection's bidirectional stream: grpc's own handling

    async def _authenticate(self, context: Context) -> None:
        values = [
            value if isinstance(value, str) else value.decode("latin-1")
            for key, value in context.invocation_metadata() or ()
            if key == "authorization"
        ]
        if len(values) > 1:
            # Which one would count is a guess proxies make differently: refuse both.
            raise ApiKeyMalformed({"authorization": f"given {len(values)} times; give one"})
        _org.set(await self._auth.org_for(values[0] if values else None))

    def _unary(self, method: str, behaviour: UnaryBehaviour, open_method: bool) -> UnaryBehaviour:
        metrics = self._metrics
        long_poll = method == LIST_EVENTS

        async def call(request: Any, context: Context) -> Any:
            _take_request_id(context)
            started = time.perf_counter()
            polling = metrics is not None and long_poll and request.timeout_ms > 0
            if polling:
                metrics.long_polls.inc()  # type: ignore[union-attr]
            try:
                check_request(request)
                if not open_method:
                    await self._authenticate(context)
                response = await behaviour(request, context)
            except Exception as error:
                await _abort(context, method, error, started, metrics)
            finally:
                if polling:
                    metrics.long_polls.dec()  # type: ignore[union-attr]
            if metrics is not None:
                metrics.rpc_done(method, "OK", time.perf_counter() - started)
            log.debug("ok", extra={"fields": {"method": method, "ms": _ms(started)}})
            return response

        return call

    def _stream(self, method: str, behaviour: StreamBehaviour, open_method: bool) -> StreamCall:
        metrics = self._metrics

        async def call(request: Any, context: Context) -> None:
            _take_request_id(context)
            started = time.perf_counter()
            monotonic, reauth_s = self._timer.monotonic, self._reauth_s  # read per message
            guard = None
            if metrics is not None:
                metrics.streams.labels(method).inc()
            try:
                check_request(request)
                if not open_method:
                    await self._authenticate(context)
                authenticated_at = monotonic()
                responses = behaviour(request, context)
                guard = self._stalls.open(responses)
                async for response in responses:
                    now = monotonic()
                    if not open_method and now - authenticated_at >= reauth_s:
                        await self._authenticate(context)  # a revoked key ends the stream
                        now = authenticated_at = monotonic()
                    guard.writing_since = now
                    await context.write(response)
                    guard.writing_since = None
                    if guard.stalled is not None:
                        if metrics is not None:
                            metrics.stalled.inc()
                        # The status can only follow the held-back message on the
                        # stream: it reaches the client once that drains, or never
                        # if the connection dies (keepalive then ends the call).
                        raise await guard.stalled
            except Exception as error:
                await _abort(context, method, error, started, metrics)
            finally:
                if guard is not None:
                    self._stalls.close(guard)
                if metrics is not None:
                    metrics.streams.labels(method).dec()
            if metrics is not None:
                metrics.rpc_done(method, "OK", time.perf_counter() - started)

        return call


def _take_request_id(context: Context) -> None:
    """The caller's x-request-id when it is a usable one, else a new id; set for the
    logs and returned to the caller in the trailing metadata (on errors too)."""
    given = None
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY:
            given = value
            break
    rid = accept_request_id(given)
    request_id.set(rid)
    context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def _abort(
    context: Context,
    method: str,
    error: Exception,
    started: float,
    metrics: Metrics | None = None,
) -> None:
    if isinstance(error, grpc.aio.AbortError):
        if metrics is not None:
            aborted = context.code()
            name = aborted.name if isinstance(aborted, grpc.StatusCode) else "UNKNOWN"
            metrics.rpc_done(method, name, time.perf_counter() - started)
        raise error
    if isinstance(error, MailpoolError):
        status = status_for(error)
    else:
        status = internal_status(request_id.get())
        log.exception("internal error", extra={"fields": {"method": method}})
    log.info(
        "rpc failed",
        extra={
            "fields": {
                "method": method,
                "code": status.code,
                "ms": _ms(started),
                "error": status.message,
            }
        },
    )
    if metrics is not None:
        name = _CODES[status.code].name if status.code in _CODES else "UNKNOWN"
        metrics.rpc_done(method, name, time.perf_counter() - started)
        if isinstance(error, MailpoolError):
            metrics.rpc_refused(name, error.reason.value)
    rich = rpc_status.to_status(status)
    # abort's trailing metadata replaces what was set before: carry the request id on.
    await context.abort(
        rich.code,
        rich.details,
        (*rich.trailing_metadata, (REQUEST_ID_KEY, request_id.get())),
    )
