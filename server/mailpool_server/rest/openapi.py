"""The HTTP contract as an OpenAPI 3.1 document. Served at /openapi.json and committed
as openapi.json at the top of the repo; tests validate real responses against it."""

from __future__ import annotations

from functools import cache
from typing import Any

JSON = dict[str, Any]


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: JSON, required: list[str] | None = None, *, closed: bool = True) -> JSON:
    schema: JSON = {
        "type": "object",
        "properties": properties,
        "required": required if required is not None else list(properties),
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def _ms() -> JSON:
    return {"type": "integer", "description": "Unix milliseconds (UTC)"}


def _iso() -> JSON:
    return {
        "type": "string",
        "description": "ISO 8601 UTC, e.g. 2026-04-27T08:35:29.000Z",
        "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
    }


def _nullable(schema: JSON) -> JSON:
    return {"anyOf": [schema, {"type": "null"}]}


def _times(name: str, *, nullable: bool = False) -> JSON:
    if nullable:
        return {name: _nullable(_ms()), f"{name}Iso": _nullable(_iso())}
    return {name: _ms(), f"{name}Iso": _iso()}


STRINGS = {"type": "array", "items": {"type": "string"}}
ACCOUNT = _object(
    {"id": {"type": "string", "pattern": "^acc_[0-9a-f]+$"}, "email": {"type": "string"}}
)
MESSAGE = _object(
    {
        "id": {"type": "string"},
        "messageIdHeader": {"type": "string"},
        "from": {"type": "string"},
        "to": STRINGS,
        "cc": STRINGS,
        "subject": {"type": "string"},
        "text": {"type": "string"},
        "html": {"type": "string"},
        "snippet": {"type": "string"},
        **_times("ts"),
    }
)
SHORT_MESSAGE = _object(
    {
        "id": {"type": "string"},
        "messageIdHeader": {"type": "string"},
        "from": {"type": "string"},
        "to": STRINGS,
        "subject": {"type": "string"},
    }
)
EVENT_TYPES = [
    "email.queued",
    "email.sent",
    "email.cancelled",
    "email.send_failed_permanently",
    "email.received",
    "email.replied",
    "email.bounced",
    "email.no_reply",
    "mailbox.replaced",
]
SEND_CLASS = {"type": "string", "enum": ["cold_first_contact", "cold_followup", "warm"]}
REASONS = [
    "cap_exceeded",
    "no_accounts",
    "inactive",
    "suspended",
    "do_not_contact",
    "invalid_recipient",
]


def _event_data() -> JSON:
    base = {"identity": {"type": "string"}, "convId": _nullable({"type": "string"})}

    def data(props: JSON) -> JSON:
        return _object({**base, **props})

    inbound = {
        **MESSAGE,
        "properties": {
            **MESSAGE["properties"],
            "direction": {"type": "string", "enum": ["inbound", "outbound"]},
        },
        "required": [*MESSAGE["required"], "direction"],
    }
    return {
        "oneOf": [
            data(
                {
                    "pendingId": {"type": "string"},
                    "recipient": {"type": "string"},
                    "sendClass": SEND_CLASS,
                    **_times("dispatchAt"),
                    "account": ACCOUNT,
                }
            ),
            data({"pendingId": {"type": "string"}, "message": SHORT_MESSAGE, "account": ACCOUNT}),
            data(
                {
                    "pendingId": {"type": "string"},
                    "recipient": {"type": "string"},
                    "reason": {
                        "type": "string",
                        "enum": ["do_not_contact", "no_accounts", "admin"],
                    },
                }
            ),
            data(
                {
                    "pendingId": {"type": "string"},
                    "recipient": {"type": "string"},
                    "error": {"type": "string"},
                    "attempts": {"type": "integer"},
                }
            ),
            data({"message": inbound}),
            data(
                {
                    "recipient": {"type": "string"},
                    "kind": {"type": "string", "enum": ["hard", "soft"]},
                    "statusCode": {"type": "string"},
                    "diagnostic": {"type": "string"},
                }
            ),
            data({"waitedMs": {"type": "integer"}}),
            data(
                {
                    "oldAccount": ACCOUNT,
                    "repinned": {"type": "integer"},
                    "newAccount": _nullable(ACCOUNT),
                }
            ),
        ]
    }


def _schemas() -> JSON:
    summary = {
        "id": {"type": "string", "pattern": "^conv_[0-9a-f]+$"},
        "with": {"type": "string"},
        "subject": {"type": "string"},
        "snippet": {"type": "string"},
        "messageCount": {"type": "integer", "minimum": 0},
        "archived": {"type": "boolean"},
        "labels": STRINGS,
        **_times("lastEventAt"),
        **_times("createdAt"),
    }
    timeline = {
        "oneOf": [
            _object(
                {
                    "type": {"const": "message"},
                    "direction": {"type": "string", "enum": ["inbound", "outbound"]},
                    "message": MESSAGE,
                    **_times("ts"),
                }
            ),
            _object(
                {
                    "type": {"const": "no_reply_expired"},
                    "waitedMs": {"type": "integer"},
                    **_times("ts"),
                }
            ),
            _object(
                {
                    "type": {"enum": ["label_added", "label_removed"]},
                    "label": {"type": "string"},
                    **_times("ts"),
                }
            ),
            _object({"type": {"enum": ["archived", "unarchived"]}, **_times("ts")}),
        ]
    }
    return {
        "Error": _object(
            {
                "error": {"type": "string"},
                "details": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            ["error"],
        ),
        "SendRequest": {
            "type": "object",
            "description": "New conversation (to + subject) or reply (convId); text and/or html.",
            "properties": {
                "to": {"anyOf": [{"type": "string"}, STRINGS]},
                "subject": {"type": "string"},
                "text": {"type": "string"},
                "html": {"type": "string"},
                "convId": {"type": "string"},
                "inReplyTo": {"type": "string"},
                "references": STRINGS,
                "labels": STRINGS,
                "noReplyEventAfter": {
                    "anyOf": [{"type": "string"}, {"type": "number"}],
                    "description": "30m, 4h, 1.5h, 1d, 3 days, 90 minutes, or ms",
                },
            },
        },
        "QueuedRecipient": _object(
            {
                "to": {"type": "string"},
                "status": {"const": "queued"},
                "pendingId": {"type": "string", "pattern": "^psn_[0-9a-f]+$"},
                "convId": {"type": "string", "pattern": "^conv_[0-9a-f]+$"},
                "sendClass": SEND_CLASS,
                "affinity": {"type": "string", "enum": ["new", "existing", "reassigned"]},
                "account": ACCOUNT,
                **_times("dispatchAt"),
            }
        ),
        "RejectedRecipient": _object(
            {
                "to": {"type": "string"},
                "status": {"const": "rejected"},
                "reason": {"type": "string", "enum": REASONS},
            }
        ),
        "SendResponse": _object(
            {
                "identity": {"type": "string"},
                "accepted": {"type": "integer", "minimum": 0},
                "queued": {"type": "integer", "minimum": 0},
                "rejected": {"type": "integer", "minimum": 0},
                "remaining": {"type": "integer", "minimum": 0},
                "results": {
                    "type": "array",
                    "items": {"oneOf": [_ref("QueuedRecipient"), _ref("RejectedRecipient")]},
                },
            }
        ),
        "ConversationSummary": _object(summary),
        "ConversationList": _object(
            {
                "identity": {"type": "string"},
                "conversations": {"type": "array", "items": _ref("ConversationSummary")},
                "nextCursor": _nullable({"type": "string"}),
            }
        ),
        "TimelineItem": timeline,
        "ConversationDetail": _object(
            {
                "identity": {"type": "string"},
                "conversation": _object(
                    {
                        **summary,
                        **_times("noReplyAt", nullable=True),
                        **_times("lastNoReplyAt", nullable=True),
                        "events": {"type": "array", "items": _ref("TimelineItem")},
                    }
                ),
            }
        ),
        "Event": _object(
            {
                "id": {"type": "string", "pattern": "^evt_[0-9A-HJKMNP-TV-Z]{26}$"},
                "seq": {"type": "integer", "minimum": 1},
                "type": {"type": "string", "enum": EVENT_TYPES},
                **_times("createdAt"),
                "convId": _nullable({"type": "string"}),
                "data": _event_data(),
            }
        ),
        "EventList": _object(
            {
                "identity": {"type": "string"},
                "events": {"type": "array", "items": _ref("Event")},
                "cursor": {"type": "integer", "minimum": 0},
                "hasMore": {"type": "boolean"},
            }
        ),
    }


def _errors(*statuses: int) -> JSON:
    text = {
        400: "Validation error; the message names the field.",
        401: "missing api key | invalid api key format | invalid api key",
        404: "identity not found in org | conversation not found",
        405: "method not allowed",
        409: "Idempotency-Key reused with a different body | Idempotency-Key in use",
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
                            "schema": {"type": "string", "pattern": "^conv_[0-9a-f]+$"},
                        },
                    ],
                    "responses": {
                        "200": _ok("ConversationDetail", "With its timeline."),
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
                        _query("types", {"type": "string"}, "CSV of event types."),
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
