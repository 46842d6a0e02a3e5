"""The HTTP contract as an OpenAPI 3.1 document. Served at /openapi.json and committed
as openapi.json at the top of the repo; tests validate real responses against it.

Response schemas are made from shapes.py (the types render.py returns) and their enum
lists from the protos; what is written here is prose: paths, parameters, descriptions."""

from __future__ import annotations

from functools import cache
from typing import Any

from mailpool_server.rest import shapes
from mailpool_server.rest.schema import expand
from mailpool_server.rest.schema import schema as schema_of

JSON = dict[str, Any]


# The request body: parse.py reads it field by field and the server judges the values,
# so it has no TypedDict; it stays written out here.
_STRINGS = {"type": "array", "items": {"type": "string"}}
SEND_REQUEST: JSON = {
    "type": "object",
    "description": "New conversation (to + subject) or reply (convId); text and/or html.",
    "properties": {
        "to": {"anyOf": [{"type": "string"}, _STRINGS]},
        "subject": {"type": "string"},
        "text": {"type": "string"},
        "html": {"type": "string"},
        "convId": {"type": "string"},
        "inReplyTo": {"type": "string"},
        "references": _STRINGS,
        "labels": _STRINGS,
        "noReplyEventAfter": {
            "anyOf": [{"type": "string"}, {"type": "number"}],
            "description": "30m, 4h, 1.5h, 1d, 3 days, 90 minutes, or ms",
        },
    },
}
# Response shapes (shapes.py, what render.py returns) that the document names; any other
# shape is inlined where it is used.
SHAPES: dict[str, object] = {
    "Error": shapes.ErrorBody,
    "QueuedRecipient": shapes.QueuedRecipient,
    "RejectedRecipient": shapes.RejectedRecipient,
    "SendResponse": shapes.SendResponse,
    "ConversationSummary": shapes.ConversationSummary,
    "ConversationList": shapes.ConversationList,
    "TimelineItem": shapes.TimelineItem,
    "ConversationDetail": shapes.ConversationDetail,
    "Event": shapes.Event,
    "EventList": shapes.EventList,
    "CancelledSend": shapes.CancelledSend,
    "LabelStats": shapes.LabelStats,
    "UsageHistory": shapes.UsageHistory,
}
REFS = {shape: name for name, shape in SHAPES.items()}


def _schemas() -> JSON:
    derived = {name: expand(shape, REFS) for name, shape in SHAPES.items()}
    return {"SendRequest": SEND_REQUEST, "LabelsRequest": LABELS_REQUEST, **derived}


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: int) -> JSON:
    text = {
        400: "Validation error; the message names the field.",
        401: "missing api key | invalid api key format | invalid api key",
        404: "identity not found in org | conversation not found",
        405: "method not allowed",
        409: "Idempotency-Key reused with a different body | Idempotency-Key in use | "
        "send already dispatched",
        413: "Body over 1 MiB.",
        415: "Not application/json.",
        500: "Server error; retry with the same Idempotency-Key.",
        503: "Upstream unavailable; retry.",
    }
    return {
        str(s): {"description": text[s], "content": {"application/json": {"schema": _ref("Error")}}}
        for s in statuses
    }


def _ok(schema: str, description: str) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _query(name: str, schema: JSON, description: str) -> JSON:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


HANDLE = {
    "name": "handle",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The identity handle, raw (alice@x) or percent-encoded (alice%40x).",
}


def _conv_id() -> JSON:
    return {
        "name": "convId",
        "in": "path",
        "required": True,
        "schema": schema_of(shapes.ConvId, REFS),
    }


LABELS_REQUEST: JSON = {
    "type": "object",
    "required": ["labels"],
    "properties": {
        "labels": {
            **_STRINGS,
            "minItems": 1,
            "maxItems": 20,
            "description": "Each 1..64 printable characters; duplicates count once.",
        }
    },
}


def _conversation_actions(common: tuple[int, ...]) -> JSON:
    """The changes a user makes to a conversation; each answers the detail of 3.5."""
    base = "/v1/identities/{handle}/conversations/{convId}"
    actions = {
        "archive": ("archiveConversation", "Archive; already archived is a no-op.", False),
        "unarchive": ("unarchiveConversation", "Unarchive; not archived is a no-op.", False),
        "labels": ("addLabels", "Add the labels not set yet (label_added items).", True),
        "labels/remove": ("removeLabels", "Remove the labels set (label_removed items).", True),
    }
    paths: JSON = {}
    for suffix, (operation, summary, with_body) in actions.items():
        post: JSON = {
            "operationId": operation,
            "summary": summary,
            "description": "Appends timeline items but no events (the contract's event "
            "list has none for these); a change to the state it is already in adds nothing.",
            "parameters": [HANDLE, _conv_id()],
            "responses": {
                "200": _ok("ConversationDetail", "The conversation after the change."),
                **_errors(*common, *((413, 415) if with_body else ())),
            },
        }
        if with_body:
            post["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref("LabelsRequest")}},
            }
        paths[f"{base}/{suffix}"] = {"post": post}
    return paths


@cache
def document() -> JSON:
    common = (400, 401, 404, 405, 500, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailpool HTTP API",
            "version": "1.0.0",
            "description": "Send email from identities. A shim over the mailpool.v1 gRPC "
            "API; every error body is {error, details?}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/identities/{handle}/send": {
                "post": {
                    "operationId": "send",
                    "parameters": [
                        HANDLE,
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "1..255 printable ASCII characters; "
                            "scope org, lifetime 24 h.",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SendRequest")}},
                    },
                    "responses": {
                        "200": {
                            **_ok("SendResponse", "At least one recipient queued."),
                            "headers": {"Idempotent-Replayed": {"schema": {"const": "true"}}},
                        },
                        "429": _ok("SendResponse", "Every recipient rejected (accepted: 0)."),
                        **_errors(*common, 409, 413, 415),
                    },
                }
            },
            "/v1/identities/{handle}/conversations": {
                "get": {
                    "operationId": "listConversations",
                    "parameters": [
                        HANDLE,
                        # Written out: the spellings are parse.py's rule, not a proto enum.
                        _query(
                            "archived", {"type": "string", "enum": ["true", "false"]}, "Filter."
                        ),
                        _query("with", {"type": "string"}, "Exact correspondent."),
                        _query("withDomain", {"type": "string"}, "Correspondent domain suffix."),
                        _query("since", {"type": "integer"}, "lastEventAt >= since (ms)."),
                        _query("until", {"type": "integer"}, "lastEventAt <= until (ms)."),
                        _query("cursor", {"type": "string"}, "nextCursor of the previous page."),
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 200},
                            "Page size, default 50.",
                        ),
                    ],
                    "responses": {
                        "200": _ok("ConversationList", "Newest activity first."),
                        **_errors(*common),
                    },
                }
            },
            "/v1/identities/{handle}/conversations/{convId}": {
                "get": {
                    "operationId": "getConversation",
                    "parameters": [
                        HANDLE,
                        {
                            "name": "convId",
                            "in": "path",
                            "required": True,
                            "schema": schema_of(shapes.ConvId, REFS),
                        },
                    ],
                    "responses": {
                        "200": _ok("ConversationDetail", "With its timeline."),
                        **_errors(*common),
                    },
                }
            },
            **_conversation_actions(common),
            "/v1/identities/{handle}/sends/{pendingId}/cancel": {
                "post": {
                    "operationId": "cancelSend",
                    "summary": "Cancel a queued send (email.cancelled, reason admin); "
                    "cancelling a cancelled send is a no-op.",
                    "parameters": [
                        HANDLE,
                        {
                            "name": "pendingId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": _ok("CancelledSend", "The send is cancelled."),
                        **_errors(*common, 409),
                    },
                }
            },
            "/v1/identities/{handle}/labels/stats": {
                "get": {
                    "operationId": "getLabelStats",
                    "summary": "Per label, sorted by name: the conversations carrying it, "
                    "how many were replied to (an inbound message) and how many had a "
                    "no-reply timer fire.",
                    "parameters": [HANDLE],
                    "responses": {
                        "200": _ok("LabelStats", "The counts per label."),
                        **_errors(*common),
                    },
                }
            },
            "/v1/identities/{handle}/usage": {
                "get": {
                    "operationId": "getUsageHistory",
                    "summary": "Accepted sends per UTC day, oldest first, ending today, every "
                    "day present; per mailbox its sends per day. Caps are today's (a "
                    "mailbox's from its current warmup stage).",
                    "parameters": [
                        HANDLE,
                        _query(
                            "days",
                            {"type": "integer", "minimum": 1, "maximum": 90},
                            "Default 30.",
                        ),
                    ],
                    "responses": {
                        "200": _ok("UsageHistory", "The daily usage."),
                        **_errors(*common),
                    },
                }
            },
            "/v1/identities/{handle}/events": {
                "get": {
                    "operationId": "listEvents",
                    "parameters": [
                        HANDLE,
                        _query("since", {"type": "integer", "minimum": 0}, "Return seq > since."),
                        {
                            **_query(
                                "types",
                                {"type": "array", "items": schema_of(shapes.EventType, REFS)},
                                "Event types, comma-separated (an unknown type is a 400).",
                            ),
                            # A comma-separated list in one parameter, as OpenAPI spells it.
                            "style": "form",
                            "explode": False,
                        },
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 200},
                            "Default 100.",
                        ),
                        _query(
                            "timeoutMs",
                            {"type": "integer", "minimum": 0, "maximum": 25000},
                            "Hold an empty answer up to this long.",
                        ),
                    ],
                    "responses": {
                        "200": _ok("EventList", "Feed cursor back as since."),
                        **_errors(*common),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "sk_live_… API key"}
            },
            "schemas": _schemas(),
        },
    }
