"""The dashboard's pages (GET). Each is a few gRPC calls with the session's key, made
side by side, and one template. Lists are one page of their RPC with a link to the
next, never the whole list, so a page costs the same with 10 or 10,000 rows."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from mailpool.v1 import conversation_pb2, conversation_service_pb2, identity_service_pb2
from mailpool_server.rest.ui.dashboard import Dashboard
from mailpool_server.rest.ui.sessions import Session
from mailpool_server.rest.ui.usage_graph import build as usage_graph
from mailpool_server.rest.ui.views import identity_row, render

IDENTITIES_PER_PAGE = 50
CONVERSATIONS_PER_PAGE = 25
USAGE_DAYS = 30
# The live tail starts this many events back, so the page is never empty.
TAIL_BACKLOG = 50
ARCHIVED_FILTERS = {"": None, "active": False, "archived": True}


def _base(session: Session, title: str) -> dict[str, object]:
    return {"session": session, "flashes": session.take_flashes(), "title": title}


async def identities(dashboard: Dashboard, request: Request, session: Session) -> Response:
    cursor = request.query_params.get("cursor", "")
    answer = await dashboard.identities.ListIdentities(
        identity_service_pb2.ListIdentitiesRequest(
            page_size=IDENTITIES_PER_PAGE, page_token=cursor
        ),
        metadata=dashboard.metadata(session),
        timeout=dashboard.timeout,
    )
    return render(
        "identities.html",
        {
            **_base(session, "Identities"),
            "rows": [identity_row(i) for i in answer.identities],
            "next_cursor": answer.next_page_token,
            "paged": bool(cursor),
        },
    )


async def identity(dashboard: Dashboard, request: Request, session: Session) -> Response:
    handle = request.path_params["handle"]
    cursor = request.query_params.get("cursor", "")
    show = request.query_params.get("show", "")
    if show not in ARCHIVED_FILTERS:
        show = ""
    metadata = dashboard.metadata(session)
    listing = conversation_service_pb2.ListConversationsRequest(
        identity=handle, page_size=CONVERSATIONS_PER_PAGE, page_token=cursor
    )
    archived = ARCHIVED_FILTERS[show]
    if archived is not None:
        listing.archived = archived
    found, usage, conversations = await asyncio.gather(
        dashboard.identities.GetIdentity(
            identity_service_pb2.GetIdentityRequest(identity=handle),
            metadata=metadata,
            timeout=dashboard.timeout,
        ),
        dashboard.identities.GetUsageHistory(
            identity_service_pb2.GetUsageHistoryRequest(identity=handle, days=USAGE_DAYS),
            metadata=metadata,
            timeout=dashboard.timeout,
        ),
        dashboard.conversations.ListConversations(
            listing, metadata=metadata, timeout=dashboard.timeout
        ),
    )
    return render(
        "identity.html",
        {
            **_base(session, found.identity.handle),
            "identity": found.identity,
            "row": identity_row(found.identity),
            "graph": usage_graph(usage.days),
            "usage_days": list(usage.days),
            "conversations": list(conversations.conversations),
            "next_cursor": conversations.next_page_token,
            "paged": bool(cursor),
            "show": show,
        },
    )


async def conversation(dashboard: Dashboard, request: Request, session: Session) -> Response:
    handle = request.path_params["handle"]
    conv_id = request.path_params["conv_id"]
    detail = await dashboard.conversations.GetConversation(
        conversation_service_pb2.GetConversationRequest(identity=handle, conv_id=conv_id),
        metadata=dashboard.metadata(session),
        timeout=dashboard.timeout,
    )
    # Outbound messages whose send no dispatcher has taken yet: those can be cancelled.
    waiting = [
        item.message
        for item in detail.timeline
        if item.WhichOneof("item") == "message"
        and item.message.delivery.state == conversation_pb2.SEND_STATE_QUEUED
    ]
    subject = detail.conversation.subject or "(no subject)"
    return render(
        "conversation.html",
        {
            **_base(session, subject),
            "handle": detail.identity,
            "conversation": detail.conversation,
            "subject": subject,
            "timeline": list(detail.timeline),
            "waiting": waiting,
        },
    )


async def events(dashboard: Dashboard, request: Request, session: Session) -> Response:
    handle = request.path_params["handle"]
    found = await dashboard.identities.GetIdentity(
        identity_service_pb2.GetIdentityRequest(identity=handle),
        metadata=dashboard.metadata(session),
        timeout=dashboard.timeout,
    )
    return render(
        "events.html",
        {
            **_base(session, f"Live events of {found.identity.handle}"),
            "handle": found.identity.handle,
            "since": max(0, found.identity.head_seq - TAIL_BACKLOG),
        },
    )
