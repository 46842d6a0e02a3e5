"""The dashboard's routes, all under /ui/ (the cookie's path). Pages are GET; every
change is a POST form; the event stream is GET text/event-stream."""

from __future__ import annotations

from functools import partial

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mailpool_server.rest.ui import actions, pages, signin, sse
from mailpool_server.rest.ui.dashboard import Dashboard
from mailpool_server.rest.ui.views import STATIC, redirect

IDENTITY = "/ui/identities/{handle}"
CONVERSATION = IDENTITY + "/conversations/{conv_id}"


def build(channel: grpc.aio.Channel) -> tuple[Dashboard, list[BaseRoute]]:
    dashboard = Dashboard(channel)

    async def to_dashboard(request: Request) -> Response:
        return redirect("/ui/")

    async def not_found(request: Request) -> Response:
        return dashboard.error_page(
            dashboard.session_of(request), 404, "Not found", "There is no such page."
        )

    routes: list[BaseRoute] = [
        Route("/ui", to_dashboard, methods=["GET"]),
        Route("/ui/", dashboard.page(pages.identities), methods=["GET"]),
        Route("/ui/signin", partial(signin.signin_page, dashboard), methods=["GET"]),
        Route("/ui/signin", partial(signin.signin, dashboard), methods=["POST"]),
        Route("/ui/signout", dashboard.action(signin.signout), methods=["POST"]),
        Route(IDENTITY, dashboard.page(pages.identity), methods=["GET"]),
        Route(IDENTITY + "/events", dashboard.page(pages.events), methods=["GET"]),
        Route(IDENTITY + "/events/stream", partial(sse.stream, dashboard), methods=["GET"]),
        Route(CONVERSATION, dashboard.page(pages.conversation), methods=["GET"]),
        Route(CONVERSATION + "/archive", dashboard.action(actions.archive), methods=["POST"]),
        Route(CONVERSATION + "/unarchive", dashboard.action(actions.unarchive), methods=["POST"]),
        Route(CONVERSATION + "/labels", dashboard.action(actions.add_label), methods=["POST"]),
        Route(
            CONVERSATION + "/labels/remove",
            dashboard.action(actions.remove_label),
            methods=["POST"],
        ),
        Route(
            IDENTITY + "/sends/{pending_id}/cancel",
            dashboard.action(actions.cancel_send),
            methods=["POST"],
        ),
        Mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static"),
        # Anything else under /ui/ is the dashboard's own 404 page, not the API's JSON.
        Route("/ui/{rest:path}", not_found, methods=["GET", "POST"]),
    ]
    return dashboard, routes
