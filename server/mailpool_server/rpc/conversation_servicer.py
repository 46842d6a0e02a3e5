"""ConversationService."""

from __future__ import annotations

from typing import Any

from mailpool.v1 import conversation_service_pb2 as pb
from mailpool.v1 import conversation_service_pb2_grpc as pb_grpc
from mailpool_server.rpc import encode
from mailpool_server.rpc.interceptor import Context, current_org
from mailpool_server.rpc.request_check import timestamp_ms
from mailpool_server.service.conversations import (
    ConversationDetail,
    ConversationFilter,
    ConversationQueries,
)


class ConversationServicer(pb_grpc.ConversationServiceServicer):
    def __init__(self, queries: ConversationQueries) -> None:
        self._queries = queries

    async def ListConversations(
        self, request: pb.ListConversationsRequest, context: Context
    ) -> pb.ListConversationsResponse:
        where = ConversationFilter(
            archived=request.archived if request.HasField("archived") else None,
            correspondent=request.correspondent if request.HasField("correspondent") else None,
            domain=(
                request.correspondent_domain if request.HasField("correspondent_domain") else None
            ),
            since=timestamp_ms(request, "since", "since"),
            until=timestamp_ms(request, "until", "until"),
        )
        page = await self._queries.list(
            current_org(),
            request.identity,
            where,
            request.page_size if request.HasField("page_size") else None,
            request.page_token,
        )
        return pb.ListConversationsResponse(
            identity=page.handle,
            conversations=[encode.conversation(c) for c in page.conversations],
            next_page_token=page.next_token,
        )

    async def GetConversation(
        self, request: pb.GetConversationRequest, context: Context
    ) -> pb.GetConversationResponse:
        detail = await self._queries.get(current_org(), request.identity, request.conv_id)
        return pb.GetConversationResponse(**_detail(detail))

    async def ArchiveConversation(
        self, request: pb.ArchiveConversationRequest, context: Context
    ) -> pb.ArchiveConversationResponse:
        detail = await self._queries.set_archived(
            current_org(), request.identity, request.conv_id, archived=True
        )
        return pb.ArchiveConversationResponse(**_detail(detail))

    async def UnarchiveConversation(
        self, request: pb.UnarchiveConversationRequest, context: Context
    ) -> pb.UnarchiveConversationResponse:
        detail = await self._queries.set_archived(
            current_org(), request.identity, request.conv_id, archived=False
        )
        return pb.UnarchiveConversationResponse(**_detail(detail))

    async def AddLabels(
        self, request: pb.AddLabelsRequest, context: Context
    ) -> pb.AddLabelsResponse:
        detail = await self._queries.add_labels(
            current_org(), request.identity, request.conv_id, tuple(request.labels)
        )
        return pb.AddLabelsResponse(**_detail(detail))

    async def RemoveLabels(
        self, request: pb.RemoveLabelsRequest, context: Context
    ) -> pb.RemoveLabelsResponse:
        detail = await self._queries.remove_labels(
            current_org(), request.identity, request.conv_id, tuple(request.labels)
        )
        return pb.RemoveLabelsResponse(**_detail(detail))

    async def GetLabelStats(
        self, request: pb.GetLabelStatsRequest, context: Context
    ) -> pb.GetLabelStatsResponse:
        stats = await self._queries.label_stats(current_org(), request.identity)
        return pb.GetLabelStatsResponse(
            identity=stats.handle,
            labels=[
                pb.LabelStats(
                    label=c.label,
                    conversations=c.conversations,
                    replied=c.replied,
                    no_reply=c.no_reply,
                )
                for c in stats.labels
            ],
        )


def _detail(detail: ConversationDetail) -> dict[str, Any]:
    """The fields every conversation-detail response shares (identity, conversation,
    timeline)."""
    return {
        "identity": detail.handle,
        "conversation": encode.conversation(detail.conversation),
        "timeline": [encode.timeline_item(entry) for entry in detail.timeline],
    }
