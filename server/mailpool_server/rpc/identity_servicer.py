"""IdentityService."""

from __future__ import annotations

from mailpool.v1 import identity_service_pb2 as pb
from mailpool.v1 import identity_service_pb2_grpc as pb_grpc
from mailpool_server.rpc import encode
from mailpool_server.rpc.interceptor import Context, current_org
from mailpool_server.service.identities import IdentityQueries


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    def __init__(self, queries: IdentityQueries) -> None:
        self._queries = queries

    async def GetIdentity(
        self, request: pb.GetIdentityRequest, context: Context
    ) -> pb.GetIdentityResponse:
        today = await self._queries.get(current_org(), request.identity)
        return pb.GetIdentityResponse(identity=encode.identity(today))

    async def ListIdentities(
        self, request: pb.ListIdentitiesRequest, context: Context
    ) -> pb.ListIdentitiesResponse:
        page, token = await self._queries.list(current_org(), request.page_size, request.page_token)
        return pb.ListIdentitiesResponse(
            identities=[encode.identity(i) for i in page], next_page_token=token
        )

    async def GetUsageHistory(
        self, request: pb.GetUsageHistoryRequest, context: Context
    ) -> pb.GetUsageHistoryResponse:
        history = await self._queries.usage_history(
            current_org(), request.identity, request.days if request.HasField("days") else None
        )
        return pb.GetUsageHistoryResponse(
            identity=history.handle,
            days=[
                pb.IdentityUsageDay(day=d.day, accepted=d.count, cap=d.cap) for d in history.days
            ],
            mailboxes=[
                pb.MailboxUsageHistory(
                    id=m.mailbox.id,
                    email=m.mailbox.email,
                    days=[pb.MailboxUsageDay(day=d.day, sent=d.count, cap=d.cap) for d in m.days],
                )
                for m in history.mailboxes
            ],
        )
