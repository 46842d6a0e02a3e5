"""Templates and what they show: Jinja2 with autoescaping on, a few filters, and the
view rows built from protobuf answers. Every response of a page goes through
`page_response`, which adds the headers a page holding an org's data needs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mailpool.v1 import conversation_pb2, identity_pb2
from mailpool_server.rest.event_summary import duration
from mailpool_server.rest.names import enum_name

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Pages hold an org's data: never cached, never framed, scripts and styles only from
# here (the one script is a file, so no inline script is ever needed).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def path_part(value: str) -> str:
    """A handle or id as one path segment ('@' stays readable)."""
    return quote(value, safe="@")


def identity_url(handle: str) -> str:
    return f"/ui/identities/{path_part(handle)}"


def conversation_url(handle: str, conv_id: str) -> str:
    return f"{identity_url(handle)}/conversations/{path_part(conv_id)}"


def utc(ms: int) -> str:
    """'2026-04-27 08:35 UTC': minutes are what an operator reads."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def iso(ms: int) -> str:
    """The machine-readable time of a <time> element."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def _ms(stamp: Timestamp) -> int:
    return stamp.ToMilliseconds()


def _direction(message: conversation_pb2.Message) -> str:
    return enum_name(conversation_pb2.MessageDirection, message.direction)


def _send_state(message: conversation_pb2.Message) -> str:
    """Where an outbound message's send stands ("queued", "sent", …); "" for inbound."""
    if not message.HasField("delivery"):
        return ""
    return enum_name(conversation_pb2.SendState, message.delivery.state)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        utc=utc,
        iso=iso,
        path_part=path_part,
        ms=_ms,
        direction=_direction,
        send_state=_send_state,
        duration=duration,
    )
    env.globals.update(identity_url=identity_url, conversation_url=conversation_url)
    return env


ENVIRONMENT = _environment()


def render(
    name: str, context: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = ENVIRONMENT.get_template(name).render(context)
    return page_response(HTMLResponse(body, status_code=status, headers=headers))


def page_response(response: Response) -> Response:
    response.headers.update(PAGE_HEADERS)
    return response


def redirect(url: str) -> Response:
    """After a POST: 303, so reloading the next page does not post again."""
    return page_response(RedirectResponse(url, status_code=303))


def same_site_next(request: Request, default: str = "/ui/") -> str:
    """A path inside the dashboard to return to after sign-in (never another site)."""
    wanted = request.query_params.get("next", "")
    return safe_next(wanted, default)


def safe_next(wanted: str, default: str = "/ui/") -> str:
    if wanted.startswith("/ui/") and "//" not in wanted and "\\" not in wanted:
        return wanted
    return default


@dataclass(frozen=True)
class IdentityRow:
    handle: str
    state: str
    tier: str
    used: int
    cap: int
    mailboxes: int
    weakest_health: int | None
    weakest_email: str


def identity_row(identity: identity_pb2.Identity) -> IdentityRow:
    weakest = min(identity.mailboxes, key=lambda m: m.health, default=None)
    return IdentityRow(
        handle=identity.handle,
        state=enum_name(identity_pb2.IdentityState, identity.state),
        tier=enum_name(identity_pb2.Tier, identity.tier),
        used=identity.used_today,
        cap=identity.daily_cap,
        mailboxes=len(identity.mailboxes),
        weakest_health=weakest.health if weakest is not None else None,
        weakest_email=weakest.email if weakest is not None else "",
    )
