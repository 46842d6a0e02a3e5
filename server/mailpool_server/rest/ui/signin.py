"""Signing in with an API key, and out.

The sign-in form has no session to hold its CSRF token yet, so the token is
double-submitted: a short-lived HttpOnly cookie and a hidden field that must match
(plus the Origin check). The key is checked with a real call (ListIdentities) before a
session is made; a refused key is the server's own words on the same form."""

from __future__ import annotations

import grpc
from starlette.requests import Request
from starlette.responses import Response

from mailpool.v1 import identity_service_pb2
from mailpool_server.rest.ui import csrf
from mailpool_server.rest.ui.dashboard import Dashboard
from mailpool_server.rest.ui.sessions import (
    COOKIE,
    COOKIE_PATH,
    SIGNIN_COOKIE,
    Session,
    new_token,
)
from mailpool_server.rest.ui.views import redirect, render, safe_next, same_site_next

SIGNIN_TOKEN_AGE_S = 3600


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form(
    request: Request, next_url: str, *, error: str = "", note: str = "", status: int = 200
) -> Response:
    token = new_token()
    response = render(
        "signin.html",
        {
            "session": None,
            "flashes": [],
            "title": "Sign in",
            "csrf_token": token,
            "next_url": next_url,
            "error": error,
            "note": note,
        },
        status=status,
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=SIGNIN_TOKEN_AGE_S,
        path=COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


async def signin_page(dashboard: Dashboard, request: Request) -> Response:
    if dashboard.session_of(request) is not None:
        return redirect(same_site_next(request))
    note = "Your session ended: sign in again." if request.query_params.get("ended") else ""
    return _form(request, same_site_next(request), note=note)


async def signin(dashboard: Dashboard, request: Request) -> Response:
    try:
        form = await csrf.read_form(request)
    except csrf.Refused as refused:
        return dashboard.error_page(None, refused.status, "Refused", refused.text)
    next_url = safe_next(csrf.field(form, "next"))
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    try:
        if not expected:
            raise csrf.Refused(403, "this form has expired: reload the page")
        csrf.check(request, form, expected)
    except csrf.Refused as refused:
        return _form(request, next_url, error=refused.text, status=refused.status)
    key = csrf.field(form, "key").strip()
    if not key:
        return _form(request, next_url, error="Enter an API key.", status=400)
    try:
        await dashboard.identities.ListIdentities(
            identity_service_pb2.ListIdentitiesRequest(page_size=1),
            metadata=dashboard.metadata(key),
            timeout=dashboard.timeout,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            text = f"That key was not accepted: {error.details()}."
            return _form(request, next_url, error=text, status=401)
        return dashboard.failed_call(request, None, error)
    session = dashboard.sessions.create(key)
    response = redirect(next_url)
    response.set_cookie(
        COOKIE,
        session.id,
        path=COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)
    return response


async def signout(
    dashboard: Dashboard, request: Request, session: Session, form: csrf.Form
) -> Response:
    dashboard.sessions.delete(session.id)
    response = redirect("/ui/signin")
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
