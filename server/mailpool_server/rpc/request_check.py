"""Checks every request gets before a servicer sees it: it decoded, and no string in it
holds a NUL (PostgreSQL cannot store one, and no field of the API has a use for it).

The request deserializer never raises: a body that does not decode becomes an
`Undecodable` marker, which the interceptor answers with INVALID_ARGUMENT. Left to
grpc, a decode failure is UNKNOWN plus an ERROR log with a traceback, which any
unauthenticated client could repeat to flood the logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from mailpool_server.service.errors import FieldViolation, InvalidArgument


@dataclass(frozen=True)
class Undecodable:
    """A request body that is not a valid message of the method's request type."""

    reason: str


def tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def decode(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except DecodeError as error:
            # protobuf's text names the problem ("String field had bad UTF-8"), not the
            # bytes, so it is safe to hand back.
            return Undecodable(str(error).rpartition(": ")[2][:200] or "malformed message")

    return decode


def check_request(request: Any) -> None:
    """Raise InvalidArgument for an undecodable request or a string holding NUL."""
    if isinstance(request, Undecodable):
        raise InvalidArgument(
            f"request: is not a valid message ({request.reason})",
            [FieldViolation("request", request.reason)],
            {"field": "request"},
        )
    if isinstance(request, Message) and (path := _nul_field(request)) is not None:
        raise InvalidArgument.of(path, "must not contain NUL characters")


def _nul_field(message: Message) -> str | None:
    """The JSON name (dotted for nested fields) of the first string field holding NUL."""
    for field, value in message.ListFields():
        values = value if field.is_repeated else (value,)
        if field.type == FieldDescriptor.TYPE_STRING:
            if any("\x00" in v for v in values):
                return field.json_name
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in values:
                if (inner := _nul_field(item)) is not None:
                    return f"{field.json_name}.{inner}"
    return None


# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def timestamp_ms(request: Message, field: str, name: str) -> int | None:
    """The request's Timestamp field in Unix milliseconds (None when unset); a value
    outside what Timestamp allows is INVALID_ARGUMENT naming the field, not an overflow
    deep in the database driver."""
    if not request.HasField(field):
        return None
    stamp = getattr(request, field)
    if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 1_000_000_000):
        raise InvalidArgument.of(name, "is outside 0001-01-01..9999-12-31")
    return int(stamp.ToMilliseconds())
