"""The dashboard's actions (POST forms, CSRF-checked by Dashboard.action): archive,
unarchive, add or remove a label, cancel a queued send. Each is one gRPC call; the
answer (or the server's refusal) is noted for the next page and the browser is sent
back with a 303, so the forms work without JavaScript and a reload never posts twice."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from mailpool.v1 import conversation_service_pb2, send_service_pb2
from mailpool_server.rest.ui import csrf
from mailpool_server.rest.ui.dashboard import Dashboard
from mailpool_server.rest.ui.sessions import Session
from mailpool_server.rest.ui.views import conversation_url, identity_url

# Only for building the way back after a refused cancel; the server checks the id.
_CONV_ID = re.compile(r"conv_[0-9a-f]+")


def _target(request: Request) -> tuple[str, str, str]:
    handle = request.path_params["handle"]
    conv_id = request.path_params["conv_id"]
    return handle, conv_id, conversation_url(handle, conv_id)


async def archive(
    dashboard: Dashboard, request: Request, session: Session, form: csrf.Form
) -> Response:
    handle, conv_id, back = _target(request)
    call = dashboard.conversations.ArchiveConversation(
        conversation_service_pb2.ArchiveConversationRequest(identity=handle, conv_id=conv_id),
        metadata=dashboard.metadata(session),
        timeout=dashboard.timeout,
    )
    return await dashboard.perform(session, call, back, lambda _: "Archived.")


async def unarchive(
    dashboard: Dashboard, request: Request, session: Session, form: csrf.Form
) -> Response:
    handle, conv_id, back = _target(request)
    call = dashboard.conversations.UnarchiveConversation(
        conversation_service_pb2.UnarchiveConversationRequest(identity=handle, conv_id=conv_id),
        metadata=dashboard.metadata(session),
        timeout=dashboard.timeout,
    )
    return await dashboard.perform(session, call, back, lambda _: "Moved back from the archive.")


async def add_label(
    dashboard: Dashboard, request: Request, session: Session, form: csrf.Form
) -> Response:
    # One label per submission: a label may hold any printable character, commas
    # included, so the field is never split.
    handle, conv_id, back = _target(request)
    label = csrf.field(form, "label").strip()
    call = dashboard.conversations.AddLabels(
        conversation_service_pb2.AddLabelsRequest(
            identity=handle, conv_id=conv_id, labels=[label] if label else []
        ),
        metadata=dashboard.metadata(session),
        timeout=dashboard.timeout,
    )
    return await dashboard.perform(session, call, back, lambda _: f"Label {label!r} added.")


async def remove_label(
    dashboard: Dashboard, request: Request, session: Session, form: csrf.Form
) -> Response:
    handle, conv_id, back = _target(request)
    label = csrf.field(form, "label")
    call = dashboard.conversations.RemoveLabels(
        conversation_service_pb2.RemoveLabelsRequest(
            identity=handle, conv_id=conv_id, labels=[label] if label else []
        ),
        metadata=dashboard.metadata(session),
        timeout=dashboard.timeout,
    )
    return await dashboard.perform(session, call, back, lambda _: f"Label {label!r} removed.")


async def cancel_send(
    dashboard: Dashboard, request: Request, session: Session, form: csrf.Form
) -> Response:
    handle = request.path_params["handle"]
    pending_id = request.path_params["pending_id"]
    conv_id = csrf.field(form, "conv")
    back = (
        conversation_url(handle, conv_id) if _CONV_ID.fullmatch(conv_id) else identity_url(handle)
    )
    call = dashboard.sends.CancelSend(
        send_service_pb2.CancelSendRequest(identity=handle, pending_id=pending_id),
        metadata=dashboard.metadata(session),
        timeout=dashboard.timeout,
    )

    def done(answer: send_service_pb2.CancelSendResponse) -> str:
        return f"Cancelled the send to {answer.recipient}."

    return await dashboard.perform(session, call, back, done)
