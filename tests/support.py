"""Test helpers: tenants made through the operator API, rich-status decoding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from mailpool_server.app import App
from mailpool_server.service.models import IdentityState
from mailpool_server.service.policy import MAX_WARMUP_STAGE, Tier


@dataclass
class Tenant:
    org: str
    key: str
    handle: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


async def make_tenant(
    app: App,
    org: str,
    handle: str,
    *,
    tier: Tier = Tier.STARTER,
    warmup_stage: int = MAX_WARMUP_STAGE,
    state: IdentityState = IdentityState.ACTIVE,
) -> Tenant:
    await app.admin.create_org(org)
    key = await app.admin.create_key(org)
    await app.admin.create_identity(org, handle, tier, state, warmup_stage)
    return Tenant(org=org, key=key, handle=handle)


M = TypeVar("M", bound=Message)


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict[str, str]
    status: status_pb2.Status

    def detail(self, kind: type[M]) -> M | None:
        for packed in self.status.details:
            if packed.Is(kind.DESCRIPTOR):
                value = kind()
                packed.Unpack(value)
                return value
        return None


def rich_error(error: grpc.aio.AioRpcError) -> RichError:
    """Decode the google.rpc.Status a mailpool error carries."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status on {error.code()}: {error.details()}"
    info = error_details_pb2.ErrorInfo()
    for packed in status.details:
        if packed.Is(info.DESCRIPTOR):
            packed.Unpack(info)
    assert info.domain == "mailpool"
    return RichError(error.code(), status.message, info.reason, dict(info.metadata), status)
