"""Checks every request gets before a servicer sees it: it decoded, and no string in it
holds a NUL (PostgreSQL cannot store one, and no field of the API has a use for it).

The request deserializer never raises: a body that does not decode, or holds a NUL in
a string, becomes a `Refused` marker, which the interceptor answers with
INVALID_ARGUMENT. Left to grpc, a decode failure is UNKNOWN plus an ERROR log with a
traceback, which any unauthenticated client could repeat to flood the logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from mailpool_server.service.errors import FieldViolation, InvalidArgument


@dataclass(frozen=True)
class Refused:
    """A request body refused as it was decoded: the error to answer it with."""

    error: InvalidArgument


def tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def decode(raw: bytes) -> Any:
        try:
            request = deserialize(raw)
        except DecodeError as error:
            # protobuf's text names the problem ("String field had bad UTF-8"), not the
            # bytes, so it is safe to hand back.
            reason = str(error).rpartition(": ")[2][:200] or "malformed message"
            return Refused(
                InvalidArgument(
                    f"request: is not a valid message ({reason})",
                    [FieldViolation("request", reason)],
                    {"field": "request"},
                )
            )
        # A NUL in a string is a zero byte in its UTF-8: a body without one has none,
        # and only a body with one (a zero or empty field does too) is walked.
        if b"\x00" in raw and (path := _nul_field(request)) is not None:
            return Refused(InvalidArgument.of(path, "must not contain NUL characters"))
        return request

    return decode


def check_request(request: Any) -> None:
    """Raise the InvalidArgument of a request the deserializer refused."""
    if type(request) is Refused:
        raise request.error


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
