"""MailpoolClient.send against the real server: replays, and retries that reuse the key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket

import grpc
import pytest

from mailpool.v1 import send_pb2
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool_client import MailpoolClient, Unavailable
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, now_ms
from tests.client.conftest import FAST_RETRY, grpc_target, make_client
from tests.client.fakes import FlakyProxy
from tests.support import Tenant

SEND = "/mailpool.v1.SendService/Send"


async def test_send_returns_the_response_and_replays_flag_a_repeat(
    client: MailpoolClient, tenant: Tenant, clock: FakeClock
) -> None:
    first = await client.send(
        tenant.handle,
        to="morgan@northwind.example",
        subject="Quick question",
        text="Hi Morgan",
        labels=["lead"],
        no_reply_event_after=dt.timedelta(hours=4),
        idempotency_key="lead-42:step-3",
    )
    assert (first.replayed, first.attempts, first.idempotency_key) == (False, 1, "lead-42:step-3")
    response = first.response
    assert (response.identity, response.accepted, response.rejected) == (tenant.handle, 1, 0)
    [result] = response.results
    assert result.status == send_pb2.RECIPIENT_STATUS_QUEUED
    assert result.dispatch_time.ToMilliseconds() == now_ms(clock)

    again = await client.send(
        tenant.handle,
        to="morgan@northwind.example",
        subject="Quick question",
        text="Hi Morgan",
        labels=["lead"],
        no_reply_event_after=4 * 3600 * 1000,  # the same duration, spelled differently
        idempotency_key="lead-42:step-3",
    )
    assert again.replayed and again.response == response
    assert [e.seq for e in (await client.list_events(tenant.handle)).events] == [1]


async def test_a_key_is_generated_when_none_is_given(
    client: MailpoolClient, tenant: Tenant
) -> None:
    one = await client.send(tenant.handle, to="a@example.com", subject="Hi", text="x")
    two = await client.send(tenant.handle, to="a@example.com", subject="Hi", text="x")
    assert len(one.idempotency_key) == 32 and one.idempotency_key != two.idempotency_key
    assert not one.replayed and not two.replayed
    reply = await client.send(
        tenant.handle, conv_id=one.response.results[0].conv_id, html="<p>and again</p>"
    )
    assert reply.response.results[0].conv_id == one.response.results[0].conv_id
    assert len((await client.list_events(tenant.handle)).events) == 3


@pytest.mark.parametrize("how", ["unavailable", "hang"])
async def test_a_lost_answer_is_retried_with_the_same_key_and_replayed(
    app: App, tenant: Tenant, how: str
) -> None:
    async with FlakyProxy(grpc_target(app)) as proxy:
        # "hang": the first attempt runs on the server, then its answer never comes; the
        # attempt's own deadline (DEADLINE_EXCEEDED) makes the client try again.
        policy = dataclasses.replace(FAST_RETRY, attempt_timeout=1.0)
        async with make_client(f"127.0.0.1:{proxy.port}", tenant.key, retry=policy) as client:
            proxy.lose(how)
            sent = await client.send(tenant.handle, to="bob@example.com", subject="Hi", text="x")
            events = await client.list_events(tenant.handle)

    assert (sent.attempts, sent.replayed) == (2, True)
    sends = [
        send_pb.SendRequest.FromString(body) for method, body in proxy.requests if method == SEND
    ]
    assert len(sends) == 2 and sends[0] == sends[1]
    assert sends[0].idempotency_key == sent.idempotency_key
    # The server executed the send once: one recipient queued, one event.
    assert [(e.seq, e.type) for e in events.events] == [(1, "email.queued")]
    assert sent.response.results[0].pending_id == events.events[0].email_queued.pending_id


async def test_retries_are_bounded_by_attempts(app: App, tenant: Tenant) -> None:
    async with FlakyProxy(grpc_target(app)) as proxy:
        policy = dataclasses.replace(FAST_RETRY, max_attempts=3)
        async with make_client(f"127.0.0.1:{proxy.port}", tenant.key, retry=policy) as client:
            proxy.lose("unavailable", "unavailable", "unavailable", "unavailable")
            with pytest.raises(Unavailable) as caught:
                await client.send(tenant.handle, to="c@example.com", subject="Hi", text="x")
            assert caught.value.attempts == 3
            assert caught.value.message == "the proxy lost the answer"
            # The fourth loss is still armed: the next send loses one answer, then replays.
            sent = await client.send(
                tenant.handle,
                to="c@example.com",
                subject="Hi",
                text="x",
                idempotency_key="the-same-one",
            )
            assert (sent.attempts, sent.replayed) == (2, True)


async def test_retries_are_bounded_by_the_overall_deadline(tenant: Tenant) -> None:
    # Nothing listens on a port we bound and closed: every attempt is UNAVAILABLE.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = dataclasses.replace(
        FAST_RETRY, max_attempts=None, deadline=1.0, initial_backoff=0.05, max_backoff=0.05
    )
    async with make_client(f"127.0.0.1:{port}", tenant.key, retry=policy) as client:
        with pytest.raises(Unavailable) as caught:
            await client.send(tenant.handle, to="d@example.com", subject="Hi", text="x")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE and caught.value.reason == ""
    assert caught.value.attempts > 1 and caught.value.retryable
