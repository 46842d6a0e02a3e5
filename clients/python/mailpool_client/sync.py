"""SyncMailpoolClient: the same client for code without an event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, overload

import grpc

from mailpool.v1 import event_pb2
from mailpool_client.client import MailpoolClient
from mailpool_client.events import EventStream, StreamItem
from mailpool_client.retry import DEFAULT_RECONNECT, DEFAULT_RETRY, RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")


async def _next(items: AsyncIterator[T]) -> T:
    return await items.__anext__()


class _LoopThread:
    """An event loop running in a daemon thread; `run` hands it a coroutine and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="mailpool-client", daemon=True
        )
        self._thread.start()
        self.closed = False

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self.closed:
            coroutine.close()
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            # KeyboardInterrupt (or any exit) in the caller's thread cancels the call too.
            future.cancel()
            raise

    def stop(self) -> None:
        if self.closed:
            return
        self.run(self.loop.shutdown_asyncgens())
        self.closed = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def _blocking(
    method: Callable[Concatenate[MailpoolClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[SyncMailpoolClient, P], T]:
    """MailpoolClient's coroutine method as a blocking SyncMailpoolClient method."""

    def call(self: SyncMailpoolClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._runner.run(method(self._client, *args, **kwargs))

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


def _iterating(
    method: Callable[Concatenate[MailpoolClient, P], AsyncIterator[T]],
) -> Callable[Concatenate[SyncMailpoolClient, P], Iterator[T]]:
    """MailpoolClient's async-iterator method as a SyncMailpoolClient iterator method."""

    def call(self: SyncMailpoolClient, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._iterate(method(self._client, *args, **kwargs))

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


class SyncEventStream(Generic[T]):
    """A blocking iterator over an `EventStream` (same guarantees: every event once, in
    seq order per identity, across reconnects). Close it (or use `with`) when leaving the
    loop early."""

    def __init__(self, runner: _LoopThread, stream: EventStream[T]) -> None:
        self._runner = runner
        self._stream = stream

    @property
    def positions(self) -> dict[str, int]:
        """The last seq yielded per identity."""
        return self._stream.positions

    @property
    def reconnects(self) -> int:
        """How many times the stream reconnected."""
        return self._stream.reconnects

    def __iter__(self) -> SyncEventStream[T]:
        return self

    def __next__(self) -> T:
        try:
            return self._runner.run(_next(self._stream))
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """End the call now."""
        if not self._runner.closed:
            self._runner.run(self._stream.aclose())

    def __enter__(self) -> SyncEventStream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class SyncMailpoolClient:
    """The blocking twin of `MailpoolClient`: same constructor, methods, errors, retries
    and resumable streams, without `await`.

    It runs a `MailpoolClient` on an event loop in a daemon thread of its own and waits for
    each call. Why not a second implementation on gRPC's sync channel: retries with the
    same idempotency key, stream reconnects, dedupe and backoff then exist once and behave
    the same in both APIs, and the facade works from any thread, including one that
    already runs an event loop (a notebook, a sync callback inside an async framework),
    where `asyncio.run` per call would fail. The cost is one thread per client and a
    thread hop per call (tens of microseconds, small beside a network round trip).

    Use `with SyncMailpoolClient(...) as client:` or call `close()`.
    """

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        tls: bool | grpc.ChannelCredentials = False,
        retry: RetryPolicy = DEFAULT_RETRY,
        reconnect: RetryPolicy = DEFAULT_RECONNECT,
        stream_idle_timeout: float | None = 60.0,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._client = MailpoolClient(
            target,
            api_key,
            tls=tls,
            retry=retry,
            reconnect=reconnect,
            stream_idle_timeout=stream_idle_timeout,
            channel_options=channel_options,
        )
        self._runner = _LoopThread()

    def close(self) -> None:
        """Close the channel and stop the client's thread."""
        if not self._runner.closed:
            self._runner.run(self._client.close())
            self._runner.stop()

    def __enter__(self) -> SyncMailpoolClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    item = self._runner.run(_next(items))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            close = getattr(items, "aclose", None)
            if close is not None and not self._runner.closed:
                self._runner.run(close())

    send = _blocking(MailpoolClient.send)
    get_identity = _blocking(MailpoolClient.get_identity)
    list_identities = _blocking(MailpoolClient.list_identities)
    identities = _iterating(MailpoolClient.identities)
    get_conversation = _blocking(MailpoolClient.get_conversation)
    conversations = _iterating(MailpoolClient.conversations)
    list_events = _blocking(MailpoolClient.list_events)

    @overload
    def events(
        self,
        identity: str,
        since: int = 0,
        *,
        include_markers: Literal[False] = False,
        reconnect: RetryPolicy | None = None,
    ) -> SyncEventStream[event_pb2.Event]: ...

    @overload
    def events(
        self,
        identity: str,
        since: int = 0,
        *,
        include_markers: Literal[True],
        reconnect: RetryPolicy | None = None,
    ) -> SyncEventStream[StreamItem]: ...

    @overload
    def events(
        self,
        identity: str,
        since: int = 0,
        *,
        include_markers: bool,
        reconnect: RetryPolicy | None = None,
    ) -> SyncEventStream[Any]: ...

    def events(
        self,
        identity: str,
        since: int = 0,
        *,
        include_markers: bool = False,
        reconnect: RetryPolicy | None = None,
    ) -> SyncEventStream[Any]:
        """As `MailpoolClient.events`, as a blocking iterator."""
        stream: EventStream[Any] = self._client.events(
            identity,
            since,
            include_markers=include_markers,
            reconnect=reconnect,
        )
        return SyncEventStream(self._runner, stream)

    @overload
    def org_events(
        self,
        since: Mapping[str, int] | None = None,
        *,
        include_markers: Literal[False] = False,
        reconnect: RetryPolicy | None = None,
    ) -> SyncEventStream[event_pb2.Event]: ...

    @overload
    def org_events(
        self,
        since: Mapping[str, int] | None = None,
        *,
        include_markers: Literal[True],
        reconnect: RetryPolicy | None = None,
    ) -> SyncEventStream[StreamItem]: ...

    @overload
    def org_events(
        self,
        since: Mapping[str, int] | None = None,
        *,
        include_markers: bool,
        reconnect: RetryPolicy | None = None,
    ) -> SyncEventStream[Any]: ...

    def org_events(
        self,
        since: Mapping[str, int] | None = None,
        *,
        include_markers: bool = False,
        reconnect: RetryPolicy | None = None,
    ) -> SyncEventStream[Any]:
        """As `MailpoolClient.org_events`, as a blocking iterator."""
        stream: EventStream[Any] = self._client.org_events(
            since,
            include_markers=include_markers,
            reconnect=reconnect,
        )
        return SyncEventStream(self._runner, stream)
