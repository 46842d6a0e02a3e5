"""Verifying mailpool's webhook signatures.

Every delivery carries `X-Inboxbase-Signature: t=<unix seconds>,v1=<hex>` where the hex
is HMAC-SHA256, keyed with the whole endpoint secret (`whsec_…`, prefix included), of
the bytes `"<t>." + raw request body`. Verify against the raw body as received, before
parsing it (re-serialized JSON would not match).

    from mailpool_client import verify_signature

    ok = verify_signature(secret, request.headers["X-Inboxbase-Signature"], raw_body)
"""

from __future__ import annotations

import hashlib
import hmac
import time

DEFAULT_TOLERANCE_S = 300


class InvalidSignature(ValueError):
    """The signature does not hold. `reason` is one of: `malformed` (the header has no
    t= or no v1=), `expired` (t is further than the tolerance from now), `mismatch`
    (no v1 value is the body's signature under this secret)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_header(header: str) -> tuple[int, list[str]]:
    """(t, every v1 value) of a signature header; InvalidSignature when malformed.
    Several v1 values may appear; unknown schemes (v0=, v2=…) are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not (value.isascii() and value.isdigit()) or len(value) > 15:
                raise InvalidSignature("malformed", f"t={value!r} is not a unix time")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None:
        raise InvalidSignature("malformed", "the signature header has no t=")
    if not signatures:
        raise InvalidSignature("malformed", "the signature header has no v1=")
    return timestamp, signatures


def check_signature(
    secret: str,
    header: str,
    raw_body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Return when `header` signs `raw_body` under `secret` with a timestamp within
    tolerance_s of now (unix seconds; default the system clock); raise InvalidSignature
    (with a reason) otherwise. Comparisons are constant-time."""
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise InvalidSignature(
            "expired", f"t={timestamp} is more than {tolerance_s:g} s from now ({current:.0f})"
        )
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256
    ).hexdigest()
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode("ascii", "replace"))
    if not matched:
        raise InvalidSignature("mismatch", "no v1 signature matches this secret and body")


def verify_signature(
    secret: str,
    header: str,
    raw_body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when `header` signs `raw_body` under `secret` (see check_signature, which
    says why not)."""
    try:
        check_signature(secret, header, raw_body, tolerance_s=tolerance_s, now=now)
    except InvalidSignature:
        return False
    return True
