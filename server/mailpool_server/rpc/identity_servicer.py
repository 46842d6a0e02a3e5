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
