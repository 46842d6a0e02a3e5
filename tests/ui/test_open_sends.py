"""Which sends of a conversation are open, read backwards from the log's head."""

from __future__ import annotations

from typing import Any, cast

from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import event_pb2, event_service_pb2, event_service_pb2_grpc
from mailpool_server.rest.ui.open_sends import PAGE, WINDOW, open_sends

MINE = "conv_0000000000000001"
OTHER = "conv_0000000000000002"


class FakeLog:
    """ListEvents over a list, as the server answers it: seq > since, of the types
    asked, at most `limit`, oldest first."""

    def __init__(self) -> None:
        self.events: list[event_pb2.Event] = []
        self.calls: list[int] = []

    def add(self, conv_id: str, ms: int, kind: str, pending_id: str) -> None:
        stamp = Timestamp()
        stamp.FromMilliseconds(ms)
        event = event_pb2.Event(seq=len(self.events) + 1, conv_id=conv_id, create_time=stamp)
        if kind == "email_queued":
            event.email_queued.CopyFrom(
                event_pb2.EmailQueued(pending_id=pending_id, recipient=f"{pending_id}@x.example")
            )
        elif kind == "email_sent":
            event.email_sent.CopyFrom(event_pb2.EmailSent(pending_id=pending_id))
        elif kind == "email_cancelled":
            event.email_cancelled.CopyFrom(event_pb2.EmailCancelled(pending_id=pending_id))
        else:
            event.email_send_failed_permanently.CopyFrom(
                event_pb2.EmailSendFailedPermanently(pending_id=pending_id)
            )
        event.type = kind.replace("_", ".", 1)
        self.events.append(event)

    async def ListEvents(
        self, request: event_service_pb2.ListEventsRequest, **_: Any
    ) -> event_service_pb2.ListEventsResponse:
        self.calls.append(request.since)
        matching = [e for e in self.events if e.seq > request.since and e.type in request.types][
            : request.limit
        ]
        return event_service_pb2.ListEventsResponse(events=matching)

    @property
    def stub(self) -> event_service_pb2_grpc.EventServiceAsyncStub:
        return cast("event_service_pb2_grpc.EventServiceAsyncStub", self)


async def _open(log: FakeLog, created_ms: int) -> tuple[list[str], bool]:
    found = await open_sends(log.stub, [], "h@x", MINE, len(log.events), created_ms)
    return [s.pending_id for s in found.sends], found.complete


async def test_a_send_is_open_until_one_of_its_endings() -> None:
    log = FakeLog()
    for n, ending in enumerate(
        ["email_sent", "email_cancelled", "email_send_failed_permanently", None]
    ):
        log.add(MINE, 1000 + n, "email_queued", f"psn_{n}")
        log.add(OTHER, 1000 + n, "email_queued", f"psn_other{n}")
        if ending:
            log.add(MINE, 2000 + n, ending, f"psn_{n}")
    assert await _open(log, created_ms=1000) == (["psn_3"], True)


async def test_a_recent_conversation_costs_one_page() -> None:
    log = FakeLog()
    for n in range(3 * PAGE):
        log.add(OTHER, 1000 + n, "email_queued", f"psn_old{n}")
    log.add(MINE, 5000, "email_queued", "psn_mine")
    assert await _open(log, created_ms=5000) == (["psn_mine"], True)
    assert log.calls == [3 * PAGE + 1 - PAGE]


async def test_pages_are_read_back_to_the_conversations_start() -> None:
    log = FakeLog()
    log.add(OTHER, 1000, "email_queued", "psn_before")
    log.add(MINE, 2000, "email_queued", "psn_first")
    for n in range(2 * PAGE):
        log.add(OTHER, 3000 + n, "email_queued", f"psn_later{n}")
    log.add(MINE, 9000, "email_sent", "psn_first")
    log.add(MINE, 9001, "email_queued", "psn_second")
    assert await _open(log, created_ms=2000) == (["psn_second"], True)
    assert len(log.calls) == 3


async def test_beyond_the_window_the_answer_says_it_is_incomplete() -> None:
    log = FakeLog()
    log.add(MINE, 1000, "email_queued", "psn_ancient")
    for n in range(WINDOW + PAGE):
        log.add(OTHER, 2000 + n, "email_queued", f"psn_{n}")
    assert await _open(log, created_ms=1000) == ([], False)
    assert len(log.calls) == WINDOW // PAGE


async def test_an_empty_log_is_complete() -> None:
    assert await _open(FakeLog(), created_ms=1000) == ([], True)
