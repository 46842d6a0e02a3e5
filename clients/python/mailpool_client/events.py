"""Resumable subscriptions to EventService/StreamEvents, as async iterators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

import grpc

from mailpool.v1 import event_pb2
from mailpool.v1 import event_service_pb2 as pb
from mailpool_client.errors import MailpoolError, from_call
from mailpool_client.retry import RetryPolicy


@dataclass(frozen=True)
class EventItem:
    """The next event of one identity's log (never one already yielded)."""

    event: event_pb2.Event


@dataclass(frozen=True)
class CaughtUp:
    """The backlog has been sent; `heads` is each followed identity's head seq then. Sent
    once per connection, so again after every reconnect."""

    heads: dict[str, int]


@dataclass(frozen=True)
class Heartbeat:
    """The stream has been idle (the server sends one every 15 s of quiet); `heads` lets an
    idle subscriber checkpoint."""

    heads: dict[str, int]


@dataclass(frozen=True)
class Disconnected:
    """The stream broke with a retryable error; the iterator reconnects after `retry_in`
    seconds from `positions` (attempt `attempt` since the last event or heartbeat)."""

    error: MailpoolError
    retry_in: float
    attempt: int
    positions: dict[str, int]


StreamItem = EventItem | CaughtUp | Heartbeat | Disconnected
"""What an event stream yields with include_markers=True."""

T = TypeVar("T")

# Opens one StreamEvents call (a grpc.aio.UnaryStreamCall).
Opener = Callable[[pb.StreamEventsRequest], Any]


def normalize_handle(handle: str) -> str:
    """The server compares handles trimmed and lowercase; so do the stream's positions."""
    return handle.strip().lower()


def _heads(heads: Any) -> dict[str, int]:
    return {str(h.identity): int(h.seq) for h in heads}


class EventStream(Generic[T]):
    """An async iterator over StreamEvents that survives disconnects.

    Per identity it yields every event once, in seq order: it remembers the last seq it
    yielded for each identity (`positions`), reconnects after any retryable failure (a
    server restart, SHUTTING_DOWN, SUBSCRIBER_STALLED, a dropped connection, or no message
    at all for `idle_timeout` seconds although the server sends heartbeats) with backoff,
    asking for `since` = those positions, and drops any event at or below them. Errors that
    reconnecting cannot fix (UNAUTHENTICATED, NOT_FOUND, OUT_OF_RANGE / SEQ_IN_FUTURE, …)
    end the iteration by raising the typed `MailpoolError`.

    Without markers it yields `mailpool.v1.event_pb2.Event` messages; with
    include_markers=True it yields `EventItem`, `CaughtUp`, `Heartbeat` and `Disconnected`.

    Use it as `async with client.events(...) as stream: async for item in stream: ...` (or
    call `aclose()`), so that leaving the loop early ends the call at once.
    """

    def __init__(
        self,
        open_call: Opener,
        *,
        identity: str | None,
        positions: Mapping[str, int],
        include_markers: bool,
        policy: RetryPolicy,
        idle_timeout: float | None,
        is_closed: Callable[[], bool] = lambda: False,
    ) -> None:
        self._open = open_call
        self._identity = normalize_handle(identity) if identity is not None else None
        self._positions = {normalize_handle(h): seq for h, seq in positions.items()}
        self._markers = include_markers
        self._policy = policy
        self._idle_timeout = idle_timeout
        self._is_closed = is_closed
        self._items = self._run()
        self.reconnects = 0
        """How many times the stream reconnected."""

    @property
    def positions(self) -> dict[str, int]:
        """The last seq yielded per identity (a checkpoint to resume from later), with the
        starting positions for identities that yielded nothing yet."""
        return dict(self._positions)

    def __aiter__(self) -> EventStream[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            item = await self._items.__anext__()
            if self._markers:
                return item  # type: ignore[return-value]
            if isinstance(item, EventItem):
                return item.event  # type: ignore[return-value]

    async def aclose(self) -> None:
        """End the call now (the iterator then stops)."""
        await self._items.aclose()

    async def __aenter__(self) -> EventStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _request(self) -> pb.StreamEventsRequest:
        if self._identity is not None:
            return pb.StreamEventsRequest(
                identity=self._identity, since=self._positions.get(self._identity, 0)
            )
        return pb.StreamEventsRequest(
            whole_org=True,
            org_since=[pb.IdentitySeq(identity=h, seq=s) for h, s in self._positions.items()],
        )

    async def _read(self, call: Any) -> Any:
        if self._idle_timeout is None:
            return await call.read()
        try:
            async with asyncio.timeout(self._idle_timeout):  # no task per message
                return await call.read()
        except TimeoutError:
            # A half-open connection delivers nothing and reports nothing; the server's
            # heartbeats make silence a reliable sign of it.
            raise MailpoolError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "",
                f"no message for {self._idle_timeout:g} s (the server sends heartbeats)",
            ) from None

    async def _run(self) -> AsyncGenerator[StreamItem, None]:
        failures = 0
        while True:
            call = self._open(self._request())
            try:
                while True:
                    message = await self._read(call)
                    if message is grpc.aio.EOF:
                        raise MailpoolError(
                            grpc.StatusCode.UNAVAILABLE, "", "the server ended the stream"
                        )
                    kind = message.WhichOneof("message")
                    if kind == "event":
                        failures = 0
                        event = message.event
                        key = self._identity or normalize_handle(event.identity)
                        if event.seq <= self._positions.get(key, 0):
                            continue  # seen already (a resend after a reconnect)
                        self._positions[key] = event.seq
                        yield EventItem(event)
                    elif kind == "caught_up":
                        # Not proof of a healthy server: one that is stopping still
                        # answers the backlog, then ends the stream. So the backoff
                        # goes on growing until an event or a heartbeat arrives.
                        yield CaughtUp(_heads(message.caught_up.heads))
                    elif kind == "heartbeat":
                        failures = 0
                        yield Heartbeat(_heads(message.heartbeat.heads))
            except grpc.aio.AioRpcError as raw:
                error = from_call(raw, attempts=failures + 1)
            except MailpoolError as own:
                error = own
            except asyncio.CancelledError:
                # gRPC cancels the calls of a channel being closed: when that, and not a
                # cancel of the task iterating, is why, the stream simply ends.
                task = asyncio.current_task()
                if self._is_closed() and (task is None or task.cancelling() == 0):
                    return
                raise
            finally:
                call.cancel()
            if self._is_closed():
                return  # the client was closed under the stream: nothing to resume
            failures += 1
            if error.code not in self._policy.retry_on or self._policy.gives_up_after(failures):
                error.attempts = failures
                raise error
            delay = self._policy.backoff(failures)
            self.reconnects += 1
            yield Disconnected(error, delay, failures, self.positions)
            await asyncio.sleep(delay)
            if self._is_closed():
                return
