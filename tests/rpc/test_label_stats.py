"""ConversationService.GetLabelStats over a real channel."""

from __future__ import annotations

import grpc
import pytest

from mailpool.v1 import conversation_service_pb2 as pb
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock, now_ms
from mailpool_server.service.models import Direction
from tests.rpc.test_conversations import stub
from tests.sending import send
from tests.store.contract.seed import message
from tests.support import Tenant, make_tenant, rich_error


async def stats(channel: grpc.aio.Channel, tenant: Tenant) -> list[tuple[str, int, int, int]]:
    response = await stub(channel).GetLabelStats(
        pb.GetLabelStatsRequest(identity=tenant.handle), metadata=tenant.metadata
    )
    assert response.identity == tenant.handle
    return [(x.label, x.conversations, x.replied, x.no_reply) for x in response.labels]


async def test_counts_per_label_across_days(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, clock: FakeClock
) -> None:
    assert await stats(channel, tenant) == []
    bob = (await send(channel, tenant, to="bob@example.com", labels=["lead", "q2"])).results[0]
    await send(channel, tenant, to="carol@example.com", labels=["lead"], no_reply_event_after="1d")
    await send(channel, tenant, to="dan@example.com")
    assert await stats(channel, tenant) == [("lead", 2, 0, 0), ("q2", 1, 0, 0)]

    clock.advance(days=1, hours=1)
    assert await app.timers.fire_no_reply() == 1
    async with app.store.write() as tx:  # what the inbound listener records on a reply
        await tx.add_message(
            message(
                bob.conv_id,
                1,
                id="msg_00000000000000aa",
                direction=Direction.INBOUND,
                message_id_header="<reply1@example.com>",
                ts=now_ms(clock),
            )
        )
    assert await stats(channel, tenant) == [("lead", 2, 1, 1), ("q2", 1, 1, 0)]

    # Archived conversations still count; a removed label is no longer listed.
    await stub(channel).ArchiveConversation(
        pb.ArchiveConversationRequest(identity=tenant.handle, conv_id=bob.conv_id),
        metadata=tenant.metadata,
    )
    await stub(channel).RemoveLabels(
        pb.RemoveLabelsRequest(identity=tenant.handle, conv_id=bob.conv_id, labels=["q2"]),
        metadata=tenant.metadata,
    )
    assert await stats(channel, tenant) == [("lead", 2, 1, 1)]


async def test_another_orgs_identity_is_not_found(
    app: App, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    other = await make_tenant(app, "globex", "hank.globex@mailpool.local")
    await send(channel, other, to="bob@example.com", labels=["theirs"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub(channel).GetLabelStats(
            pb.GetLabelStatsRequest(identity=other.handle), metadata=tenant.metadata
        )
    error = rich_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "IDENTITY_NOT_FOUND")
