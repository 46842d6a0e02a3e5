"""Opaque page tokens and page-size rules shared by the list use cases."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from mailpool_server.service.errors import InvalidArgument
from mailpool_server.service.limits import MAX_PAGE_SIZE


def page_size(value: int | None, *, field: str, default: int, maximum: int = MAX_PAGE_SIZE) -> int:
    """None means the default; anything else must lie in 1..maximum."""
    if value is None:
        return default
    if not 1 <= value <= maximum:
        raise InvalidArgument.of(field, f"must be between 1 and {maximum}")
    return value


def encode_token(position: list[Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, *, field: str, shape: tuple[type, ...]) -> list[Any]:
    """Decode a token made by encode_token; anything else is INVALID_ARGUMENT."""
    try:
        padded = token + "=" * (-len(token) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidArgument.of(field, "is not a cursor this server issued") from None
    if (
        not isinstance(position, list)
        or len(position) != len(shape)
        or not all(type(v) is t for v, t in zip(position, shape, strict=True))
        or not all(_storable(v) for v in position)
    ):
        raise InvalidArgument.of(field, "is not a cursor this server issued")
    return position


def _storable(value: object) -> bool:
    """Only values a cursor can hold: 64-bit integers, strings without NUL."""
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return not isinstance(value, str) or "\x00" not in value
