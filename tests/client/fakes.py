"""Real gRPC servers on loopback that misbehave on purpose: a proxy that loses answers,
and an EventService whose streams break and resend what the client has already seen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc

from mailpool.v1 import event_pb2
from mailpool.v1 import event_service_pb2 as pb
from mailpool.v1 import event_service_pb2_grpc as pb_grpc

FORWARDED_HEADERS = ("authorization",)


class FlakyProxy(grpc.GenericRpcHandler):
    """Forwards every unary call, as raw bytes, to a real mailpool server. For the next
    `lose` calls it forwards the request, lets the server execute it, and then loses the
    answer: "unavailable" answers UNAVAILABLE instead, "hang" never answers (the client's
    deadline ends the call). `requests` records every request that reached the proxy."""

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream
        self._channel: grpc.aio.Channel | None = None
        self._server: grpc.aio.Server | None = None
        self.requests: list[tuple[str, bytes]] = []
        self.losses: list[str] = []
        self.port = 0

    def lose(self, *how: str) -> None:
        """Lose the answers of the next calls, one way each ("unavailable" or "hang")."""
        self.losses.extend(how)

    async def __aenter__(self) -> FlakyProxy:
        self._channel = grpc.aio.insecure_channel(self._upstream)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers([self])
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._channel is not None
        await self._server.stop(None)
        await self._channel.close()

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method
        return grpc.unary_unary_rpc_method_handler(self._forwarder(method))

    def _forwarder(self, method: str) -> Callable[[bytes, Any], Any]:
        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            assert self._channel is not None
            self.requests.append((method, request))
            metadata = [
                (k, v) for k, v in context.invocation_metadata() or () if k in FORWARDED_HEADERS
            ]
            forward_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = (
                self._channel.unary_unary(method)
            )
            call = forward_call(request, metadata=metadata)
            try:
                response: bytes = await call
            except grpc.aio.AioRpcError as error:
                context.set_trailing_metadata(tuple(error.trailing_metadata() or ()))
                await context.abort(error.code(), error.details() or "")
            initial = await call.initial_metadata()
            if self.losses:
                how = self.losses.pop(0)
                if how == "hang":
                    await asyncio.Event().wait()  # until the client's deadline cancels us
                await context.abort(grpc.StatusCode.UNAVAILABLE, "the proxy lost the answer")
            await context.send_initial_metadata(tuple(initial or ()))
            return response

        return forward


def event(handle: str, seq: int) -> event_pb2.Event:
    return event_pb2.Event(
        id=f"evt_{handle[:1]}{seq:025d}",
        seq=seq,
        type="email.no_reply",
        identity=handle,
        email_no_reply=event_pb2.EmailNoReply(waited_ms=60_000),
    )


Script = Sequence[pb.StreamEventsResponse | str]


class ScriptedEvents(pb_grpc.EventServiceServicer):
    """An EventService whose n-th StreamEvents call plays scripts[n] (later calls play
    the last one): messages, then "unavailable" or "cancelled" (fail with that code),
    "silence" (send nothing more, never end) or the end of the list (hang up with OK). It
    ignores `since` on purpose, so it resends old events; `requests` records what each
    connection asked for."""

    def __init__(self, scripts: Sequence[Script]) -> None:
        self._scripts = list(scripts)
        self.requests: list[pb.StreamEventsRequest] = []
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> ScriptedEvents:
        self._server = grpc.aio.server()
        pb_grpc.add_EventServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self._server.stop(None)

    async def ListEvents(
        self,
        request: pb.ListEventsRequest,
        context: grpc.aio.ServicerContext[pb.ListEventsRequest, pb.ListEventsResponse],
    ) -> pb.ListEventsResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "only streams here")

    async def StreamEvents(
        self,
        request: pb.StreamEventsRequest,
        context: grpc.aio.ServicerContext[pb.StreamEventsRequest, pb.StreamEventsResponse],
    ) -> AsyncIterator[pb.StreamEventsResponse]:
        self.requests.append(request)
        script = self._scripts[min(len(self.requests), len(self._scripts)) - 1]
        for step in script:
            if isinstance(step, str) and step in ("unavailable", "cancelled"):
                await context.abort(grpc.StatusCode[step.upper()], "scripted failure")
            elif step == "silence":
                await asyncio.Event().wait()
            else:
                assert isinstance(step, pb.StreamEventsResponse)
                yield step


def events(handle: str, seqs: Sequence[int]) -> list[pb.StreamEventsResponse]:
    return [pb.StreamEventsResponse(event=event(handle, seq)) for seq in seqs]


def caught_up(heads: dict[str, int]) -> pb.StreamEventsResponse:
    return pb.StreamEventsResponse(
        caught_up=pb.CaughtUp(heads=[pb.IdentitySeq(identity=h, seq=s) for h, s in heads.items()])
    )
