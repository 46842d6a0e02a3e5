"""Structured logs: one JSON object a line, with the request id of the call."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from typing import Any

from mailpool_server.service.ids import random_hex

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# The caller's id travels as gRPC metadata x-request-id and HTTP header X-Request-Id,
# and comes back the same way, so one id follows a call from the shim into the logs.
REQUEST_ID_KEY = "x-request-id"
MAX_REQUEST_ID = 128
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")  # MAX_REQUEST_ID


def new_request_id() -> str:
    return "req_" + random_hex(8)


def accept_request_id(given: str | bytes | None) -> str:
    """The caller's id when it is printable ASCII without spaces, at most 128
    characters; a new one otherwise (an id that is not safe to log or echo is not
    taken)."""
    if isinstance(given, bytes):
        given = given.decode("latin-1")
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return new_request_id()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id.get(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO") -> None:
    """Route every logger to stderr as JSON lines (stdout stays for command output)."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
