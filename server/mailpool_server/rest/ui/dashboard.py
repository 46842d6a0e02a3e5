"""What every dashboard handler shares: the gRPC stubs, the session table, the way a
request finds its session and calls mailpool with that session's key, and how failed
calls become pages. Handlers live in pages.py, actions.py, signin.py and sse.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import grpc
from starlette.requests import Request
from starlette.responses import Response

from mailpool.v1 import (
    conversation_service_pb2_grpc,
    event_service_pb2_grpc,
    identity_service_pb2_grpc,
    send_service_pb2_grpc,
)
from mailpool_server.logs import REQUEST_ID_KEY, request_id
from mailpool_server.rest.metadata import CALL_TIMEOUT_S, MAX_AUTHORIZATION, printable
from mailpool_server.rest.ui import csrf
from mailpool_server.rest.ui.sessions import COOKIE, Flash, Session, SessionTable
from mailpool_server.rest.ui.views import redirect, render

log = logging.getLogger("mailpool.ui")

# Failed calls that are the user's to fix (a bad label, a send already on its way):
# the page they came from says why, rather than an error page.
USER_ERRORS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

PageHandler = Callable[["Dashboard", Request, Session], Awaitable[Response]]
ActionHandler = Callable[["Dashboard", Request, Session, csrf.Form], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Dashboard:
    def __init__(self, channel: grpc.aio.Channel, sessions: SessionTable | None = None) -> None:
        self.identities = identity_service_pb2_grpc.IdentityServiceStub(channel)
        self.conversations = conversation_service_pb2_grpc.ConversationServiceStub(channel)
        self.events = event_service_pb2_grpc.EventServiceStub(channel)
        self.sends = send_service_pb2_grpc.SendServiceStub(channel)
        self.sessions = sessions or SessionTable()
        # Set when the shim stops: open event streams end instead of holding shutdown.
        self.closing = asyncio.Event()
        self.timeout = CALL_TIMEOUT_S

    def close(self) -> None:
        self.closing.set()

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def metadata(self, session: Session | str) -> list[tuple[str, str]]:
        """The session's key, as every other client sends it, and the request id."""
        key = session.key if isinstance(session, Session) else session
        return [
            ("authorization", "Bearer " + printable(key[:MAX_AUTHORIZATION])),
            (REQUEST_ID_KEY, request_id.get()),
        ]

    def page(self, handler: PageHandler) -> Endpoint:
        """A GET page: signed-in only (else to the sign-in page, and back after)."""

        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            if session is None:
                wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect("/ui/signin?" + urlencode({"next": wanted}))
            try:
                return await handler(self, request, session)
            except grpc.aio.AioRpcError as error:
                return self.failed_call(request, session, error)

        return endpoint

    def action(self, handler: ActionHandler) -> Endpoint:
        """A POST: signed in, with the session's CSRF token and from our own origin."""

        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            try:
                form = await csrf.read_form(request)
                if session is None:
                    raise csrf.Refused(403, "you are signed out: sign in again")
                csrf.check(request, form, session.csrf)
                return await handler(self, request, session, form)
            except csrf.Refused as refused:
                return self.error_page(session, refused.status, "Refused", refused.text)
            except grpc.aio.AioRpcError as error:
                return self.failed_call(request, session, error)

        return endpoint

    async def perform(
        self, session: Session, call: Awaitable[Any], back: str, done: Callable[[Any], str]
    ) -> Response:
        """Run an action's call, note its outcome for the next page, go back there.
        Errors the user can act on become that note; the rest propagate."""
        try:
            answer = await call
        except grpc.aio.AioRpcError as error:
            if error.code() not in USER_ERRORS:
                raise
            session.flashes.append(Flash(error.details() or "refused", error=True))
            return redirect(back)
        session.flashes.append(Flash(done(answer)))
        return redirect(back)

    def failed_call(
        self, request: Request, session: Session | None, error: grpc.aio.AioRpcError
    ) -> Response:
        code = error.code()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            # The key was revoked (or expired) since sign-in: the session is over.
            if session is not None:
                self.sessions.delete(session.id)
            return redirect("/ui/signin?ended=1")
        if code == grpc.StatusCode.NOT_FOUND:
            # Another org's identity or conversation lands here too, told apart from
            # a missing one by nothing, as over the API.
            return self.error_page(session, 404, "Not found", error.details() or "not found")
        if code in USER_ERRORS:
            return self.error_page(session, 400, "Bad request", error.details() or "bad request")
        log.warning("dashboard call failed", extra={"fields": {"code": str(code)}})
        return self.error_page(
            session, 503, "mailpool did not answer", "The server did not answer; try again."
        )

    def error_page(self, session: Session | None, status: int, title: str, text: str) -> Response:
        return render(
            "error.html",
            {"session": session, "flashes": [], "title": title, "text": text, "status": status},
            status=status,
        )
