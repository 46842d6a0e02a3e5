"""A subscriber that stops reading is ended, with its resume point, instead of
making the server read and buffer for it."""

from __future__ import annotations

import grpc
import pytest

from mailpool.v1 import event_service_pb2 as pb
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.events import EmailQueued, NewEvent
from mailpool_server.service.models import MailboxRef, SendClass
from mailpool_server.service.policy import Tier
from mailpool_server.service.timer import ManualTimer
from tests.events_support import stream
from tests.support import make_tenant, rich_error

STALL_S = 60.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.stream_stall_s = STALL_S
    return settings


@pytest.fixture
def timer() -> ManualTimer:
    return ManualTimer()


async def drain(call: grpc.aio.UnaryStreamCall, seqs: list[int]) -> None:  # type: ignore[type-arg]
    while True:
        message = await call.read()
        assert isinstance(message, pb.StreamEventsResponse)
        seqs.append(message.event.seq)


async def test_stalled_subscriber_is_ended_with_its_last_seq(app: App, timer: ManualTimer) -> None:
    tenant = await make_tenant(app, "big", "big@mailpool.local", tier=Tier.SCALE)
    total = 20_000  # far more than HTTP/2 flow control lets through unread
    async with app.store.write() as tx:
        identity = await tx.identity_by_handle(tenant.handle)
        assert identity is not None
        await tx.append_events(
            identity,
            [
                NewEvent(
                    "conv_1",
                    EmailQueued(
                        f"psn_{n}",
                        "a@example.com",
                        SendClass.WARM,
                        0,
                        MailboxRef("acc_1", "m@example.com"),
                    ),
                )
                for n in range(total)
            ],
            0,
        )
    assert app.grpc is not None
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{app.grpc.port}",
        options=[("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)],
    ) as slow:
        call = stream(slow, tenant)
        first = await call.read()
        assert isinstance(first, pb.StreamEventsResponse)
        assert first.event.seq == 1
        # The client reads no more, so flow control holds the server's next write.
        # Moving the timer past the stall period makes the server give the stream up:
        # its feed lets go of its waiter. Nothing signals that to a client, so the
        # test moves time in steps of the watcher's tick and looks at the gauge.
        while app.bus.waiting:
            await timer.advance(STALL_S / 4)
        seqs = [1]
        # Draining now delivers what the transport held, then the status.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await drain(call, seqs)
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) < total
    error = rich_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "SUBSCRIBER_STALLED")
    # The resume point is never past what the client received.
    assert seqs[-1] - 1 <= int(error.metadata[tenant.handle]) <= seqs[-1]
