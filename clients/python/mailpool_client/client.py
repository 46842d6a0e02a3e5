"""MailpoolClient: the asyncio client (grpc.aio)."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import conversation_pb2, event_pb2, identity_pb2
from mailpool.v1 import conversation_service_pb2 as conversation_pb
from mailpool.v1 import conversation_service_pb2_grpc as conversation_grpc
from mailpool.v1 import event_service_pb2 as event_pb
from mailpool.v1 import event_service_pb2_grpc as event_grpc
from mailpool.v1 import identity_service_pb2 as identity_pb
from mailpool.v1 import identity_service_pb2_grpc as identity_grpc
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool.v1 import send_service_pb2_grpc as send_grpc
from mailpool_client.errors import from_call
from mailpool_client.events import EventStream, StreamItem
from mailpool_client.retry import DEFAULT_RECONNECT, DEFAULT_RETRY, RetryPolicy

try:  # one source for the version: clients/python/pyproject.toml
    __version__ = importlib.metadata.version("mailpool-client")
except importlib.metadata.PackageNotFoundError:  # imported from a source tree
    __version__ = "0+unknown"

REPLAYED_HEADER = "idempotent-replayed"

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

# Keepalive finds a dead connection under an idle stream: every 30 s (the server accepts
# client pings every 10 s or slower), unlimited while the stream carries no data. The
# channel's own reconnect backoff is kept short (gRPC's default grows to 120 s), so that a
# restarted server is found again within seconds; the client's policies pace the retries.
DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.primary_user_agent", f"mailpool-client-python/{__version__}"),
)


@dataclass(frozen=True)
class SendResult:
    """What `MailpoolClient.send` returns.

    Attributes:
        response: the SendResponse (per-recipient results, counts, remaining cap).
        replayed: True when the server answered from its idempotency record (response
            metadata `idempotent-replayed: true`): an earlier attempt, or an earlier call
            with the same key, had executed it, and nothing was sent twice.
        idempotency_key: the key the send carried (the caller's, or one generated for it).
        attempts: how many attempts it took.
    """

    response: send_pb.SendResponse
    replayed: bool
    idempotency_key: str
    attempts: int


def _duration_text(value: str | int | dt.timedelta) -> str:
    if isinstance(value, dt.timedelta):
        return str(round(value.total_seconds() * 1000))
    return str(value)


def _timestamp(value: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class MailpoolClient:
    """An asyncio client for a mailpool server.

    `MailpoolClient("mail.internal:50051", "sk_live_…")` talks plaintext gRPC;
    `tls=True` uses the system's root certificates, or pass `grpc.ssl_channel_credentials(…)`
    (or any `grpc.ChannelCredentials`). The key travels as `authorization: Bearer <key>` on
    every call; an empty key sends none (the server answers API_KEY_MISSING).

    The channel is opened on first use in the running event loop and closed by `close()`
    or `async with`. One client serves any number of concurrent calls and streams, within
    that one event loop (gRPC channels belong to the loop that made them).

    Every failure raises a `MailpoolError` subclass (see `mailpool_client.errors`). Unary
    calls are retried on UNAVAILABLE and DEADLINE_EXCEEDED by `retry` (a `RetryPolicy`;
    each method also takes one); `send` makes that safe by always carrying an idempotency
    key. Streams reconnect by `reconnect`.
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
        self.target = target
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {api_key}"),) if api_key else ()
        )
        if tls is True:
            self._credentials: grpc.ChannelCredentials | None = grpc.ssl_channel_credentials()
        elif tls is False:
            self._credentials = None
        else:
            self._credentials = tls
        self.retry = retry
        self.reconnect = reconnect
        self.stream_idle_timeout = stream_idle_timeout
        # Later options win in gRPC, so the caller's override the defaults.
        self._options = (*DEFAULT_CHANNEL_OPTIONS, *channel_options)
        self._channel: grpc.aio.Channel | None = None
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------

    @property
    def channel(self) -> grpc.aio.Channel:
        """The grpc.aio channel (opened on first use, in the running event loop)."""
        if self._closed:
            raise RuntimeError("the MailpoolClient is closed")
        if self._channel is None:
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(self.target, options=self._options)
            else:
                self._channel = grpc.aio.secure_channel(
                    self.target, self._credentials, options=self._options
                )
        return self._channel

    async def close(self) -> None:
        """Close the channel: calls still running end with CANCELLED, streams stop
        iterating. The client cannot be used afterwards."""
        self._closed = True
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()

    async def __aenter__(self) -> MailpoolClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _unary(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        policy: RetryPolicy | None,
        *,
        extra_timeout: float = 0.0,
    ) -> tuple[Resp, grpc.aio.Metadata | None, int]:
        """One call with retries: the response, its initial metadata, the attempts made."""
        policy = policy or self.retry
        loop = asyncio.get_running_loop()
        deadline = None if policy.deadline is None else loop.time() + policy.deadline
        attempt = 0
        while True:
            attempt += 1
            timeout = None
            if policy.attempt_timeout is not None:
                timeout = policy.attempt_timeout + extra_timeout
            if deadline is not None:
                left = max(deadline - loop.time(), 0.001)
                timeout = left if timeout is None else min(timeout, left)
            call = method(request, metadata=self._metadata, timeout=timeout)
            try:
                response = await call
                return response, await call.initial_metadata(), attempt
            except grpc.aio.AioRpcError as raw:
                error = from_call(raw, attempts=attempt)
                if error.code not in policy.retry_on or policy.gives_up_after(attempt):
                    raise error from raw
                pause = policy.backoff(attempt)
                if error.retry_delay is not None:
                    pause = max(pause, error.retry_delay.total_seconds())
                if deadline is not None and loop.time() + pause >= deadline:
                    raise error from raw
            await asyncio.sleep(pause)

    # -- SendService ------------------------------------------------------------------

    async def send(
        self,
        identity: str,
        *,
        to: str | Sequence[str] = (),
        subject: str | None = None,
        text: str | None = None,
        html: str | None = None,
        conv_id: str | None = None,
        in_reply_to: str | None = None,
        references: Sequence[str] = (),
        labels: Sequence[str] = (),
        no_reply_event_after: str | int | dt.timedelta | None = None,
        idempotency_key: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> SendResult:
        """Queue email from `identity`.

        A new conversation: `to` (one address or a list; each recipient gets its own
        conversation and result), `subject`, and `text` and/or `html`, optionally
        `in_reply_to` with `references`. A reply: `conv_id` and `text` and/or `html` (the
        server uses the conversation's correspondent, subject and mailbox). Both take
        `labels` and `no_reply_event_after` ("4h", "3 days", milliseconds as an int, or a
        timedelta).

        The send carries `idempotency_key`, or a fresh random one when None, and every
        retry (on UNAVAILABLE or DEADLINE_EXCEEDED, with backoff, within the policy's
        attempts and deadline) reuses it: an attempt that did execute although its answer
        was lost is replayed by the server, never executed twice. `SendResult.replayed`
        says whether the answer was such a replay. Pass your own key (1..255 printable
        ASCII, e.g. "lead-42:step-3") to make a retry safe across processes too.

        Raises `AllRecipientsRejected` (RESOURCE_EXHAUSTED) when every recipient was
        rejected, with the per-recipient result and, for caps, `retry_delay`; see
        `mailpool_client.errors` for the others.
        """
        key = idempotency_key if idempotency_key is not None else uuid.uuid4().hex
        request = send_pb.SendRequest(
            identity=identity,
            to=[to] if isinstance(to, str) else list(to),
            references=list(references),
            labels=list(labels),
            idempotency_key=key,
        )
        for name, value in (
            ("subject", subject),
            ("text", text),
            ("html", html),
            ("conv_id", conv_id),
            ("in_reply_to", in_reply_to),
        ):
            if value is not None:
                setattr(request, name, value)
        if no_reply_event_after is not None:
            request.no_reply_event_after = _duration_text(no_reply_event_after)
        stub = send_grpc.SendServiceStub(self.channel)
        response, initial, attempts = await self._unary(stub.Send, request, retry)
        replayed = initial is not None and initial.get(REPLAYED_HEADER) == "true"
        return SendResult(response, replayed, key, attempts)

    # -- IdentityService --------------------------------------------------------------

    async def get_identity(
        self, identity: str, *, retry: RetryPolicy | None = None
    ) -> identity_pb2.Identity:
        """The identity with today's usage (cap, used, remaining, reset time) and its
        mailboxes (stage, health, cap)."""
        stub = identity_grpc.IdentityServiceStub(self.channel)
        request = identity_pb.GetIdentityRequest(identity=identity)
        response, _, _ = await self._unary(stub.GetIdentity, request, retry)
        return response.identity

    async def list_identities(
        self, *, page_size: int = 0, page_token: str = "", retry: RetryPolicy | None = None
    ) -> identity_pb.ListIdentitiesResponse:
        """One page of the org's identities, ordered by handle (`identities()` pages)."""
        stub = identity_grpc.IdentityServiceStub(self.channel)
        request = identity_pb.ListIdentitiesRequest(page_size=page_size, page_token=page_token)
        response, _, _ = await self._unary(stub.ListIdentities, request, retry)
        return response

    async def identities(
        self, *, page_size: int = 0, retry: RetryPolicy | None = None
    ) -> AsyncIterator[identity_pb2.Identity]:
        """Every identity of the org, ordered by handle, fetched page by page."""
        token = ""
        while True:
            page = await self.list_identities(page_size=page_size, page_token=token, retry=retry)
            for identity in page.identities:
                yield identity
            token = page.next_page_token
            if not token:
                return

    # -- ConversationService ----------------------------------------------------------

    async def get_conversation(
        self, identity: str, conv_id: str, *, retry: RetryPolicy | None = None
    ) -> conversation_pb.GetConversationResponse:
        """One conversation with its timeline, oldest item first."""
        stub = conversation_grpc.ConversationServiceStub(self.channel)
        request = conversation_pb.GetConversationRequest(identity=identity, conv_id=conv_id)
        response, _, _ = await self._unary(stub.GetConversation, request, retry)
        return response

    async def conversations(
        self,
        identity: str,
        *,
        archived: bool | None = None,
        correspondent: str | None = None,
        correspondent_domain: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        page_size: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[conversation_pb2.Conversation]:
        """Every conversation of `identity` that matches the filters (ANDed), newest
        activity first, fetched page by page (`page_size` 1..200 a page).

        `correspondent` is an exact address, `correspondent_domain` a domain suffix,
        `since`/`until` bound the last activity time (inclusive; naive datetimes are UTC).
        """
        stub = conversation_grpc.ConversationServiceStub(self.channel)
        request = conversation_pb.ListConversationsRequest(identity=identity)
        if archived is not None:
            request.archived = archived
        if correspondent is not None:
            request.correspondent = correspondent
        if correspondent_domain is not None:
            request.correspondent_domain = correspondent_domain
        if since is not None:
            request.since.CopyFrom(_timestamp(since))
        if until is not None:
            request.until.CopyFrom(_timestamp(until))
        if page_size is not None:
            request.page_size = page_size
        while True:
            page, _, _ = await self._unary(stub.ListConversations, request, retry)
            for conversation in page.conversations:
                yield conversation
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    # -- EventService -----------------------------------------------------------------

    async def list_events(
        self,
        identity: str,
        since: int = 0,
        *,
        types: Sequence[str] = (),
        limit: int | None = None,
        timeout_ms: int = 0,
        retry: RetryPolicy | None = None,
    ) -> event_pb.ListEventsResponse:
        """Events of `identity` with seq > since, oldest first (one page: feed `cursor`
        back as `since`). With `timeout_ms` (up to 25000) an empty answer waits that long
        for an event to commit."""
        stub = event_grpc.EventServiceStub(self.channel)
        request = event_pb.ListEventsRequest(
            identity=identity, since=since, types=list(types), timeout_ms=timeout_ms
        )
        if limit is not None:
            request.limit = limit
        response, _, _ = await self._unary(
            stub.ListEvents, request, retry, extra_timeout=timeout_ms / 1000
        )
        return response

    def _open_stream(self, request: event_pb.StreamEventsRequest) -> Any:
        # The stub is made per connection, in the loop that iterates (not where the
        # stream object was made), since the channel belongs to that loop.
        stub = event_grpc.EventServiceStub(self.channel)
        return stub.StreamEvents(request, metadata=self._metadata)

    @overload
    def events(
        self,
        identity: str,
        since: int = 0,
        *,
        include_markers: Literal[False] = False,
        reconnect: RetryPolicy | None = None,
    ) -> EventStream[event_pb2.Event]: ...

    @overload
    def events(
        self,
        identity: str,
        since: int = 0,
        *,
        include_markers: Literal[True],
        reconnect: RetryPolicy | None = None,
    ) -> EventStream[StreamItem]: ...

    @overload
    def events(
        self,
        identity: str,
        since: int = 0,
        *,
        include_markers: bool,
        reconnect: RetryPolicy | None = None,
    ) -> EventStream[Any]: ...

    def events(
        self,
        identity: str,
        since: int = 0,
        *,
        include_markers: bool = False,
        reconnect: RetryPolicy | None = None,
    ) -> EventStream[Any]:
        """Follow `identity`'s log from seq > since: the backlog, then live events, for as
        long as you iterate. Survives disconnects and server restarts without losing or
        repeating an event (see `EventStream`); `stream.positions[handle]` is the last seq
        yielded, to checkpoint. With include_markers=True it yields `EventItem`,
        `CaughtUp`, `Heartbeat` and `Disconnected` instead of bare events.
        """
        return EventStream(
            self._open_stream,
            identity=identity,
            positions={identity: since},
            include_markers=include_markers,
            policy=reconnect or self.reconnect,
            idle_timeout=self.stream_idle_timeout,
            is_closed=lambda: self._closed,
        )

    @overload
    def org_events(
        self,
        since: Mapping[str, int] | None = None,
        *,
        include_markers: Literal[False] = False,
        reconnect: RetryPolicy | None = None,
    ) -> EventStream[event_pb2.Event]: ...

    @overload
    def org_events(
        self,
        since: Mapping[str, int] | None = None,
        *,
        include_markers: Literal[True],
        reconnect: RetryPolicy | None = None,
    ) -> EventStream[StreamItem]: ...

    @overload
    def org_events(
        self,
        since: Mapping[str, int] | None = None,
        *,
        include_markers: bool,
        reconnect: RetryPolicy | None = None,
    ) -> EventStream[Any]: ...

    def org_events(
        self,
        since: Mapping[str, int] | None = None,
        *,
        include_markers: bool = False,
        reconnect: RetryPolicy | None = None,
    ) -> EventStream[Any]:
        """Follow every identity of the key's org (identities created later included, from
        seq 1): per identity gap-free, in seq order and never repeated, across reconnects.
        `since` maps handles to the last seq handled; identities not in it start from 0.
        `stream.positions` is the checkpoint to pass back as `since`."""
        return EventStream(
            self._open_stream,
            identity=None,
            positions=dict(since or {}),
            include_markers=include_markers,
            policy=reconnect or self.reconnect,
            idle_timeout=self.stream_idle_timeout,
            is_closed=lambda: self._closed,
        )
