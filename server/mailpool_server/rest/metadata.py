"""What the shim puts on every gRPC call it makes: the caller's key, made safe to carry
as metadata, and a deadline. Shared by the JSON routes and the dashboard."""

from __future__ import annotations

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
