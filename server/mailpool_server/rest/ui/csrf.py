"""Cross-site request forgery: every POST carries a token the page got from this
server (compared in constant time) and, when the browser says where it comes from
(Origin), must come from this very origin. The session cookie is SameSite=Strict
on top; each of the three alone stops a forged form post from another site.

Forms are read here too (application/x-www-form-urlencoded, bounded), so the
dashboard needs no multipart parser."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.requests import Request

MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 64
FIELD = "csrf"


class Refused(Exception):
    """The request cannot be acted on: 403 (forgery checks) or 400/413/415 (the form)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


Form = dict[str, list[str]]


async def read_form(request: Request) -> Form:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Refused(415, "forms are sent as application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, "the form is larger than 64 KiB")
    try:
        return parse_qs(
            body.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "the form could not be read") from None


def field(form: Form, name: str) -> str:
    """The first value of a field ("" when absent)."""
    values = form.get(name)
    return values[0] if values else ""


def check(request: Request, form: Form, expected: str) -> None:
    """Refused(403) unless the form's token is `expected` and the origin is ours."""
    given = field(form, FIELD)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refused(403, "this form has expired or did not come from this dashboard")
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() != own_origin(request):
        raise Refused(403, "this form was sent from another site")


def own_origin(request: Request) -> str:
    """scheme://host[:port] as the browser addressed us (the Host header)."""
    return f"{request.url.scheme}://{request.url.netloc}".lower()
