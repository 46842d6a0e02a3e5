"""The fan-out baseline: about the least a grpc.aio server can do to fan events out.

StreamEvents writes `caught_up`, then every published event; Send publishes the next
event (seq 1, 2, …): it builds one StreamEventsResponse and hands that same message to
every open stream's queue, which the stream's handler writes. No store, no auth, no
heartbeat, stall or shutdown handling. mailpool's fan-out is judged against it: the
same subscribers, read by the same client (bench/fanout.py), through the same
`context.write` path mailpool's streams use. `python -m bench.fanout_server` prints its
port on the first line.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import grpc

from bench.noop_server import NoopEvents, NoopSend, sample_event
from mailpool.v1 import event_service_pb2 as event_pb
from mailpool.v1 import event_service_pb2_grpc as event_grpc
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool.v1 import send_service_pb2_grpc as send_grpc
from mailpool_server import event_loop

CAUGHT_UP = event_pb.StreamEventsResponse(caught_up=event_pb.CaughtUp())


class Subscribers:
    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[event_pb.StreamEventsResponse]] = set()
        self.seq = 0

    def publish(self) -> None:
        self.seq += 1
        message = sample_event(self.seq)  # built once, written to every subscriber
        for queue in self.queues:
            queue.put_nowait(message)


class FanoutEvents(NoopEvents):
    def __init__(self, subscribers: Subscribers) -> None:
        self._subscribers = subscribers

    async def StreamEvents(  # type: ignore[override]
        self, request: event_pb.StreamEventsRequest, context: Any
    ) -> None:
        queue: asyncio.Queue[event_pb.StreamEventsResponse] = asyncio.Queue()
        self._subscribers.queues.add(queue)
        try:
            await context.write(CAUGHT_UP)
            while True:
                await context.write(await queue.get())
        finally:
            self._subscribers.queues.discard(queue)


class PublishingSend(NoopSend):
    def __init__(self, subscribers: Subscribers) -> None:
        super().__init__()
        self._subscribers = subscribers

    async def Send(self, request: send_pb.SendRequest, context: Any) -> send_pb.SendResponse:
        self._subscribers.publish()
        return self._response


async def main() -> None:
    subscribers = Subscribers()
    server = grpc.aio.server()
    send_grpc.add_SendServiceServicer_to_server(PublishingSend(subscribers), server)
    event_grpc.add_EventServiceServicer_to_server(FanoutEvents(subscribers), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    # As `mailpool serve` does, start-up objects stay out of full collections; the young
    # threshold stays Python's (mailpool raises it, heap.py: a baseline keeps the default).
    gc.freeze()
    print(port, flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    await server.stop(0)


if __name__ == "__main__":
    # The loop mailpool serve runs on: a baseline on another loop would skew the ratios.
    event_loop.run(main())
