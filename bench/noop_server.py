"""The baseline: a grpc.aio server that serves mailpool's RPCs with prebuilt answers of
the real sizes and does no work, so that the same client harness measures what gRPC
and Python cost before mailpool does anything. `python -m bench.noop_server` prints
its port on the first line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from mailpool.v1 import event_service_pb2 as event_pb
from mailpool.v1 import event_service_pb2_grpc as event_grpc
from mailpool.v1 import send_pb2
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool.v1 import send_service_pb2_grpc as send_grpc
from mailpool_server import event_loop


def sample_send_response() -> send_pb.SendResponse:
    result = send_pb2.RecipientResult(
        to="lead000001@example.com",
        status=send_pb2.RECIPIENT_STATUS_QUEUED,
        pending_id="psn_0123456789abcdef",
        conv_id="conv_0123456789abcdef",
        send_class=send_pb2.SEND_CLASS_COLD_FIRST_CONTACT,
        affinity=send_pb2.AFFINITY_NEW,
    )
    result.account.id, result.account.email = "acc_0123456789abcdef", "bench.1@mailboxes.local"
    result.dispatch_time.FromMilliseconds(1_777_276_800_000)
    return send_pb.SendResponse(
        identity="bench0@mailpool.local", accepted=1, rejected=0, remaining=1999, results=[result]
    )


def sample_event(seq: int) -> event_pb.StreamEventsResponse:
    message = event_pb.StreamEventsResponse()
    e = message.event
    e.id, e.seq, e.type = "evt_01JQ0000000000000000000000", seq, "email.queued"
    e.identity, e.conv_id = "bench0@mailpool.local", "conv_0123456789abcdef"
    e.create_time.FromMilliseconds(1_777_276_800_000)
    q = e.email_queued
    q.pending_id, q.recipient = "psn_0123456789abcdef", "lead000001@example.com"
    q.send_class = send_pb2.SEND_CLASS_COLD_FIRST_CONTACT
    q.dispatch_time.FromMilliseconds(1_777_276_800_000)
    q.account.id, q.account.email = "acc_0123456789abcdef", "bench.1@mailboxes.local"
    return message


class NoopSend(send_grpc.SendServiceServicer):
    def __init__(self) -> None:
        self._response = sample_send_response()

    async def Send(self, request: send_pb.SendRequest, context: Any) -> send_pb.SendResponse:
        return self._response

    async def CancelSend(
        self, request: send_pb.CancelSendRequest, context: Any
    ) -> send_pb.CancelSendResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the baseline")
        raise AssertionError("abort raises")


class NoopEvents(event_grpc.EventServiceServicer):
    async def ListEvents(
        self, request: event_pb.ListEventsRequest, context: Any
    ) -> event_pb.ListEventsResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the baseline")
        raise AssertionError("abort raises")

    async def StreamEvents(
        self, request: event_pb.StreamEventsRequest, context: Any
    ) -> AsyncIterator[event_pb.StreamEventsResponse]:
        # `since` carries how many events to stream (a baseline has no log).
        for seq in range(1, request.since + 1):
            yield sample_event(seq)


async def main() -> None:
    server = grpc.aio.server()
    send_grpc.add_SendServiceServicer_to_server(NoopSend(), server)
    event_grpc.add_EventServiceServicer_to_server(NoopEvents(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    await server.stop(0)


if __name__ == "__main__":
    # The loop mailpool serve runs on: a baseline on another loop would skew the ratios.
    event_loop.run(main())
