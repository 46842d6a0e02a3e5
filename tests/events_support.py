"""Helpers for reading events over a real channel."""

from __future__ import annotations

from typing import Any

import grpc

from mailpool.v1 import event_service_pb2 as pb
from mailpool.v1 import event_service_pb2_grpc as pb_grpc
from tests.support import Tenant


def stub(channel: grpc.aio.Channel) -> pb_grpc.EventServiceAsyncStub:
    return pb_grpc.EventServiceStub(channel)


async def list_events(
    channel: grpc.aio.Channel, tenant: Tenant, **fields: Any
) -> pb.ListEventsResponse:
    fields.setdefault("identity", tenant.handle)
    return await stub(channel).ListEvents(pb.ListEventsRequest(**fields), metadata=tenant.metadata)


def stream(
    channel: grpc.aio.Channel, tenant: Tenant, **fields: Any
) -> grpc.aio.UnaryStreamCall[pb.StreamEventsRequest, pb.StreamEventsResponse]:
    if not fields.get("whole_org"):
        fields.setdefault("identity", tenant.handle)
    return stub(channel).StreamEvents(pb.StreamEventsRequest(**fields), metadata=tenant.metadata)
