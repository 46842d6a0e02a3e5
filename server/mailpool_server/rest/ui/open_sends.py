"""Which sends of a conversation are still waiting, read from the identity's event log.

No RPC lists a conversation's queued sends, and its timeline does not say which
outbound message is still queued. The log does: every send starts with email.queued
(its pending id, conversation, recipient) and ends in exactly one of email.sent,
email.cancelled or email.send_failed_permanently. So a send is open when its queued
event has no ending after it.

Reading the whole log would cost as much as the identity is old, so the log is read
backwards from its head, a page at a time, and reading stops at the first page that
holds an event older than the conversation (everything before it is older still: the
log is in time order). A recent conversation costs one page. At most WINDOW events are
read; when that is not enough to reach the conversation's start the page says so.
A send that a dispatcher has already claimed also counts as open here (the log has no
event for the claim); cancelling it is refused by the server (SEND_ALREADY_DISPATCHED)
and the page says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailpool.v1 import event_pb2, event_service_pb2, event_service_pb2_grpc

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
    newest_first: list[list[event_pb2.Event]] = []
    high = head_seq
    reached_start = high == 0
    while not reached_start and head_seq - high < WINDOW:
        low = max(0, high - PAGE)
        page = await stub.ListEvents(
            event_service_pb2.ListEventsRequest(
                identity=handle, since=low, types=SEND_TYPES, limit=PAGE
            ),
            metadata=metadata,
            timeout=CALL_TIMEOUT_S,
        )
        # At most PAGE events lie in (low, high], so this page holds all of them.
        chunk = [e for e in page.events if e.seq <= high]
        newest_first.append(chunk)
        reached_start = low == 0 or any(
            e.create_time.ToMilliseconds() < conversation_created_ms for e in chunk
        )
        high = low
    waiting: dict[str, OpenSend] = {}
    for chunk in reversed(newest_first):
        for event in chunk:
            if event.conv_id == conv_id:
                _apply(waiting, event)
    return OpenSends(sends=list(waiting.values()), complete=reached_start, window=WINDOW)


def _apply(waiting: dict[str, OpenSend], event: event_pb2.Event) -> None:
    """One send event, in log order: queued opens a send, any ending closes it."""
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
