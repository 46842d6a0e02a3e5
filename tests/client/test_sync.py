"""SyncMailpoolClient: the blocking facade, called from a worker thread while the test's
event loop serves the in-process server."""

from __future__ import annotations

import asyncio

import pytest

from mailpool.v1 import event_pb2
from mailpool_client import (
    AllRecipientsRejected,
    CaughtUp,
    EventItem,
    Heartbeat,
    NotFound,
    Reason,
    SyncMailpoolClient,
)
from mailpool_server.app import App
from tests.client.conftest import FAST_RETRY, grpc_target
from tests.support import Tenant


async def test_the_sync_client_does_what_the_async_one_does(app: App, tenant: Tenant) -> None:
    h = tenant.handle

    def work() -> None:
        with SyncMailpoolClient(grpc_target(app), tenant.key, retry=FAST_RETRY) as client:
            to = ["a@example.com", "b@example.com"]
            sent = client.send(h, to=to, subject="Hi", text="x", idempotency_key="sync-1")
            again = client.send(h, to=to, subject="Hi", text="x", idempotency_key="sync-1")
            assert (sent.replayed, again.replayed) == (False, True)
            assert again.response == sent.response
            assert client.get_identity(h).remaining_today == 148

            with pytest.raises(NotFound) as caught:
                client.get_identity("nobody@mailpool.local")
            assert caught.value.reason == Reason.IDENTITY_NOT_FOUND
            with pytest.raises(AllRecipientsRejected) as rejected:
                client.send(h, to="not an address", subject="s", text="t")
            assert rejected.value.rejections[0].reason == "invalid_recipient"

            conversations = list(client.conversations(h, page_size=1))
            assert len(conversations) == 2
            first_only = client.conversations(h, page_size=1)
            assert next(first_only).id == conversations[0].id
            first_only.close()  # type: ignore[attr-defined]
            assert [i.handle for i in client.identities()] == [h]

            items = []
            with client.events(h, include_markers=True) as stream:
                for item in stream:
                    if not isinstance(item, Heartbeat):
                        items.append(item)
                    if isinstance(item, CaughtUp):
                        break
            assert [i.event.seq for i in items if isinstance(i, EventItem)] == [1, 2]
            assert items[-1] == CaughtUp({h: 2})
            with client.events(h, since=1) as bare:
                event = next(bare)
                assert isinstance(event, event_pb2.Event) and event.seq == 2
                assert bare.positions == {h: 2}
            page = client.list_events(h, since=1)
            assert [e.seq for e in page.events] == [2]
        with pytest.raises(RuntimeError, match="closed"):
            client.get_identity(h)

    async with asyncio.timeout(60):
        await asyncio.to_thread(work)
