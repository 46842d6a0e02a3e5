"""What the shim puts on every gRPC call it makes: the caller's key, made safe to carry
as metadata, and a deadline. Shared by the JSON routes and the dashboard."""

from __future__ import annotations

from collections.abc import Iterable

from mailpool_server.logs import REQUEST_ID_KEY, request_id

# A unary call's deadline; long-polls get their own timeout on top.
CALL_TIMEOUT_S = 30.0
_PRINTABLE = {chr(c) for c in range(0x20, 0x7F)}
# Keys are ~50 characters. A longer Authorization value cannot hold one, and forwarded
# whole it would overflow the call's metadata limit (a transport error, not a 401), so
# it is cut: the server still answers for what is left (malformed or unknown key).
MAX_AUTHORIZATION = 1024


def printable(value: str) -> str:
    """Metadata carries printable ASCII only; anything else cannot be part of a key."""
    return "".join(c if c in _PRINTABLE else "?" for c in value)


def call_metadata(authorizations: Iterable[str]) -> list[tuple[str, str]]:
    """A call's metadata: each Authorization value, cut and made printable (the server,
    which refuses more than one, decides which counts for HTTP and gRPC callers alike),
    and this request's id (one id in the shim's and the server's logs)."""
    return [
        *(("authorization", printable(value[:MAX_AUTHORIZATION])) for value in authorizations),
        (REQUEST_ID_KEY, request_id.get()),
    ]
