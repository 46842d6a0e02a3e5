"""EventService."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator

from mailpool.v1 import event_service_pb2 as pb
from mailpool.v1 import event_service_pb2_grpc as pb_grpc
from mailpool_server.rpc.encode_events import fill_event
from mailpool_server.rpc.interceptor import Context, current_org
from mailpool_server.rpc.stall_watch import StreamStalled
from mailpool_server.service.errors import SubscriberStalled
from mailpool_server.service.event_feed import CaughtUp, EventFeed, Heartbeat
from mailpool_server.service.events import Event


def _heads(heads: dict[str, int]) -> list[pb.IdentitySeq]:
    return [pb.IdentitySeq(identity=handle, seq=seq) for handle, seq in heads.items()]


def _marker(item: CaughtUp | Heartbeat) -> pb.StreamEventsResponse:
    heads = _heads(item.heads)
    if isinstance(item, CaughtUp):
        return pb.StreamEventsResponse(caught_up=pb.CaughtUp(heads=heads))
    return pb.StreamEventsResponse(heartbeat=pb.Heartbeat(heads=heads))


# Encoded stream messages kept for reuse: subscribers that follow one identity are handed
# the same events, and one encoding serves them all (a fan-out to 500 is one encode).
ENCODED_CACHE = 4096


class EventServicer(pb_grpc.EventServiceServicer):
    def __init__(self, feed: EventFeed) -> None:
        self._feed = feed
        self._encoded: OrderedDict[tuple[str, int], pb.StreamEventsResponse] = OrderedDict()

    def _stream_message(self, item: Event) -> pb.StreamEventsResponse:
        key = (item.identity_id, item.seq)
        message = self._encoded.get(key)
        if message is None:
            message = pb.StreamEventsResponse()
            fill_event(message.event, item)
            self._encoded[key] = message
            if len(self._encoded) > ENCODED_CACHE:
                self._encoded.popitem(last=False)
        return message

    async def ListEvents(
        self, request: pb.ListEventsRequest, context: Context
    ) -> pb.ListEventsResponse:
        page = await self._feed.list_events(
            current_org(),
            request.identity,
            request.since,
            list(request.types),
            request.limit if request.HasField("limit") else None,
            request.timeout_ms,
        )
        response = pb.ListEventsResponse(
            identity=page.handle, cursor=page.cursor, has_more=page.has_more
        )
        for item in page.events:
            fill_event(response.events.add(), item)
        return response

    async def StreamEvents(
        self, request: pb.StreamEventsRequest, context: Context
    ) -> AsyncIterator[pb.StreamEventsResponse]:
        subscription = await self._feed.subscription(
            current_org(),
            handle=request.identity or None,
            since=request.since,
            whole_org=request.whole_org,
            org_since={s.identity: s.seq for s in request.org_since},
        )
        delivered: dict[str, int] = {}
        # When the client goes or stalls, leaving the block lets go of the feed's waiter
        # now, not whenever this generator is collected.
        with subscription:
            while True:
                for item in await subscription.next_items():
                    if isinstance(item, Event):
                        message = self._stream_message(item)
                    else:
                        message = _marker(item)
                    try:
                        yield message
                    except StreamStalled:
                        raise SubscriberStalled(delivered) from None
                    if isinstance(item, Event):
                        # Counted once handed over: the interceptor finishes this write
                        # before it asks for the next message.
                        delivered[item.handle] = item.seq
