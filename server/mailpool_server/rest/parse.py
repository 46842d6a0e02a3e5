"""Contract JSON and query strings → protobuf requests. Only shape: every business
rule (lengths, ranges, grammars, state) is the server's, so that gRPC and HTTP
clients get the same answers."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.datastructures import QueryParams

from mailpool.v1 import (
    conversation_service_pb2,
    event_service_pb2,
    identity_service_pb2,
    send_service_pb2,
)

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


class BadRequest(Exception):
    """A request the shim cannot even translate (HTTP 400)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    @property
    def details(self) -> dict[str, str] | None:
        return {"field": self.field} if self.field else None


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest(None, "malformed JSON: the body is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise BadRequest(
            None, f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise BadRequest(None, "malformed JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest(None, "the body must be a JSON object")
    return data


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(name, f"{name}: must be a string")
    return value


def _strings(body: dict[str, Any], name: str, *, single_ok: bool = False) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if single_ok and isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        shape = "a string or a list of strings" if single_ok else "a list of strings"
        raise BadRequest(name, f"{name}: must be {shape}")
    return value


def _duration(body: dict[str, Any]) -> str | None:
    value = body.get("noReplyEventAfter")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(
            "noReplyEventAfter", "noReplyEventAfter: must be a duration string or milliseconds"
        )
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)  # the server parses (and judges) it


def send_request(
    handle: str, body: dict[str, Any], idempotency_key: str | None
) -> send_service_pb2.SendRequest:
    request = send_service_pb2.SendRequest(
        identity=handle,
        to=_strings(body, "to", single_ok=True),
        references=_strings(body, "references"),
        labels=_strings(body, "labels"),
    )
    for name, field in (
        ("subject", "subject"),
        ("text", "text"),
        ("html", "html"),
        ("convId", "conv_id"),
        ("inReplyTo", "in_reply_to"),
    ):
        value = _string(body, name)
        if value is not None:
            setattr(request, field, value)
    duration = _duration(body)
    if duration is not None:
        request.no_reply_event_after = duration
    if idempotency_key is not None:
        request.idempotency_key = idempotency_key
    return request


def _int(query: QueryParams, name: str, maximum: int = INT64_MAX) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw, 10)
    except ValueError:
        raise BadRequest(name, f"{name}: must be an integer") from None
    if not -maximum - 1 <= value <= maximum:
        raise BadRequest(name, f"{name}: is out of range")
    return value


def _timestamp(query: QueryParams, name: str) -> Timestamp | None:
    ms = _int(query, name, maximum=253_402_300_799_999)  # Timestamp ends at year 9999
    if ms is None:
        return None
    if ms < 0:
        raise BadRequest(name, f"{name}: must be 0 or more (Unix milliseconds)")
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def list_conversations(
    handle: str, query: QueryParams
) -> conversation_service_pb2.ListConversationsRequest:
    request = conversation_service_pb2.ListConversationsRequest(
        identity=handle, page_token=query.get("cursor", "")
    )
    archived = query.get("archived")
    if archived is not None:
        if archived not in ("true", "false"):
            raise BadRequest("archived", "archived: must be true or false")
        request.archived = archived == "true"
    if (correspondent := query.get("with")) is not None:
        request.correspondent = correspondent
    if (domain := query.get("withDomain")) is not None:
        request.correspondent_domain = domain
    for name in ("since", "until"):
        if (stamp := _timestamp(query, name)) is not None:
            getattr(request, name).CopyFrom(stamp)
    if (limit := _int(query, "limit", INT32_MAX)) is not None:
        request.page_size = limit
    return request


def list_events(handle: str, query: QueryParams) -> event_service_pb2.ListEventsRequest:
    request = event_service_pb2.ListEventsRequest(identity=handle)
    if (since := _int(query, "since")) is not None:
        request.since = since
    types = query.get("types")
    if types:
        request.types.extend(t.strip() for t in types.split(","))
    if (limit := _int(query, "limit", INT32_MAX)) is not None:
        request.limit = limit
    if (timeout := _int(query, "timeoutMs", INT32_MAX)) is not None:
        request.timeout_ms = timeout
    return request


def labels(body: dict[str, Any]) -> list[str]:
    """The "labels" list of a labels body; the server judges the labels themselves."""
    return _strings(body, "labels")


def usage_history(handle: str, query: QueryParams) -> identity_service_pb2.GetUsageHistoryRequest:
    """?days=N; absent means the server's default, the range is the server's to judge."""
    request = identity_service_pb2.GetUsageHistoryRequest(identity=handle)
    if (days := _int(query, "days", INT32_MAX)) is not None:
        request.days = days
    return request
