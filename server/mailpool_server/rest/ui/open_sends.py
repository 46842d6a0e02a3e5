"""Which sends of a conversation are still waiting, read from the identity's event log.

No RPC lists a conversation's queued sends, and its timeline does not say which
outbound message is still queued. The log does: every send starts with email.queued
(its pending id, conversation, recipient) and ends in exactly one of email.sent,
email.cancelled or email.send_failed_permanently. So a send is open when its queued
event has no ending after it.

Reading the whole log would cost as much as the identity is old, so only the newest
WINDOW events are read (a few pages of ListEvents). That is complete whenever the
conversation began inside the window, which the page checks and says when it is not.
A send that a dispatcher has already claimed also counts as open here (the log has no
event for the claim); cancelling it is refused by the server (SEND_ALREADY_DISPATCHED)
and the page says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailpool.v1 import event_service_pb2, event_service_pb2_grpc

WINDOW = 1000
PAGE = 200
SEND_TYPES = ("email.queued", "email.sent", "email.cancelled", "email.send_failed_permanently")
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OpenSend:
    pending_id: str
    recipient: str
    dispatch_ms: int
    mailbox: str


@dataclass(frozen=True)
class OpenSends:
    sends: list[OpenSend]
    # False when the conversation may have sends older than the window read.
    complete: bool
    window: int


async def open_sends(
    stub: event_service_pb2_grpc.EventServiceAsyncStub,
    metadata: Sequence[tuple[str, str]],
    handle: str,
    conv_id: str,
    head_seq: int,
    conversation_created_ms: int,
) -> OpenSends:
    start = max(0, head_seq - WINDOW)
    complete = start == 0 or await _older_than(
        stub, metadata, handle, start, conversation_created_ms
    )
    waiting: dict[str, OpenSend] = {}
    since = start
    while True:
        page = await stub.ListEvents(
            event_service_pb2.ListEventsRequest(
                identity=handle, since=since, types=SEND_TYPES, limit=PAGE
            ),
            metadata=metadata,
            timeout=CALL_TIMEOUT_S,
        )
        for event in page.events:
            if event.conv_id != conv_id:
                continue
            kind = event.WhichOneof("payload")
            if kind == "email_queued":
                queued = event.email_queued
                waiting[queued.pending_id] = OpenSend(
                    pending_id=queued.pending_id,
                    recipient=queued.recipient,
                    dispatch_ms=queued.dispatch_time.ToMilliseconds(),
                    mailbox=queued.account.email,
                )
            elif kind == "email_sent":
                waiting.pop(event.email_sent.pending_id, None)
            elif kind == "email_cancelled":
                waiting.pop(event.email_cancelled.pending_id, None)
            elif kind == "email_send_failed_permanently":
                waiting.pop(event.email_send_failed_permanently.pending_id, None)
        if not page.has_more:
            break
        since = page.cursor
    return OpenSends(sends=list(waiting.values()), complete=complete, window=WINDOW)


async def _older_than(
    stub: event_service_pb2_grpc.EventServiceAsyncStub,
    metadata: Sequence[tuple[str, str]],
    handle: str,
    seq: int,
    created_ms: int,
) -> bool:
    """Whether event `seq` happened before the conversation began: then none of the
    conversation's events lies at or before it (the log is in time order)."""
    page = await stub.ListEvents(
        event_service_pb2.ListEventsRequest(identity=handle, since=seq - 1, limit=1),
        metadata=metadata,
        timeout=CALL_TIMEOUT_S,
    )
    return bool(page.events) and page.events[0].create_time.ToMilliseconds() < created_ms
