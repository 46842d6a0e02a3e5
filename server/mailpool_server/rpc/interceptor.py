"""One interceptor for every mailpool RPC: request id, API key, error mapping, logs.

Servicers stay short: they read the caller's org from `current_org()` and raise
domain errors; this module turns those into rich statuses. Health and reflection
stay open (no key), so that probes and grpcurl-style tools work.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc
from grpc_status import rpc_status

from mailpool_server.logs import new_request_id, request_id
from mailpool_server.rpc.stall_watch import StallWatch
from mailpool_server.rpc.status import internal_status, status_for
from mailpool_server.service.auth import Authenticator
from mailpool_server.service.errors import MailpoolError

log = logging.getLogger("mailpool.rpc")

_org: contextvars.ContextVar[str] = contextvars.ContextVar("org_id")
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


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


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator, *, stall_s: float = DEFAULT_STALL_S) -> None:
        self._auth = authenticator
        self._stalls = StallWatch(stall_s)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, cast(UnaryBehaviour, handler.unary_unary)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, cast(StreamBehaviour, handler.unary_stream)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    async def _authenticate(self, context: Context) -> None:
        authorization = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                authorization = value if isinstance(value, str) else value.decode()
        _org.set(await self._auth.org_for(authorization))

    def _unary(self, method: str, behaviour: UnaryBehaviour) -> UnaryBehaviour:
        async def call(request: Any, context: Context) -> Any:
            request_id.set(new_request_id())
            started = time.perf_counter()
            try:
                await self._authenticate(context)
                response = await behaviour(request, context)
            except Exception as error:
                await _abort(context, method, error, started)
            log.debug("ok", extra={"fields": {"method": method, "ms": _ms(started)}})
            return response

        return call

    def _stream(self, method: str, behaviour: StreamBehaviour) -> StreamCall:
        async def call(request: Any, context: Context) -> None:
            request_id.set(new_request_id())
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            guard = None
            try:
                await self._authenticate(context)
                responses = behaviour(request, context)
                guard = self._stalls.open(responses)
                async for response in responses:
                    guard.writing_since = loop.time()
                    await context.write(response)
                    guard.writing_since = None
                    if guard.stalled is not None:
                        # The status can only follow the held-back message on the
                        # stream: it reaches the client once that drains, or never
                        # if the connection dies (keepalive then ends the call).
                        raise await guard.stalled
            except Exception as error:
                await _abort(context, method, error, started)
            finally:
                if guard is not None:
                    self._stalls.close(guard)

        return call


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def _abort(context: Context, method: str, error: Exception, started: float) -> None:
    if isinstance(error, grpc.aio.AbortError):
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
    await context.abort_with_status(rpc_status.to_status(status))
