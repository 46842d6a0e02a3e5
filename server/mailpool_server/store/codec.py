"""Domain records ⇄ the JSON kept in TEXT columns (event payloads, stored send results,
timeline data).

Written with the dataclasses' own field names, by orjson (a send writes five JSON texts:
through the stdlib's encoder, with each record first made plain, they cost a tenth of the
send's CPU; orjson does both in C). Rows written before the payloads were
typed carry the HTTP contract's camelCase names (`pendingId`, `from`, `account`), so a
field is read under its own name first and under its old name otherwise: the log is
append-only and old rows are never rewritten.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import orjson

from mailpool_server.service.events import PAYLOAD_TYPES, EventPayload, EventType
from mailpool_server.service.models import (
    Affinity,
    MailboxRef,
    QueuedRecipient,
    RecipientOutcome,
    RejectReason,
    SendClass,
    SendResult,
)

T = TypeVar("T")
# Names rows had before payloads were typed, where camelCase of the field is not it.
_LEGACY_NAMES = {
    "from_address": "from",
    "mailbox": "account",
    "old_mailbox": "oldAccount",
    "new_mailbox": "newAccount",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


Writer = Callable[[Any], Any]


def _plain(value: Any) -> Any:
    """A record as JSON-ready values: dataclasses → objects, tuples → lists, enums →
    their values."""
    writer: Writer = _writer(typing.cast(Any, type(value)))
    return writer(value)


@cache
def _writer(cls: type[Any]) -> Writer:
    """How to make a value of this class JSON-ready for the stdlib's encoder (what
    orjson refuses, see dump), worked out once per class."""
    if dataclasses.is_dataclass(cls):
        names = tuple(f.name for f in _fields(cls))
        return lambda record: {name: _plain(getattr(record, name)) for name in names}
    if issubclass(cls, enum.Enum):
        return lambda member: member.value
    if issubclass(cls, tuple | list):
        return lambda items: [_plain(item) for item in items]
    return lambda scalar: scalar  # str, int, bool, None: JSON has them


@cache
def _fields(cls: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


Reader = Callable[[Any], Any]


@cache
def _reader(hint: Any) -> Reader:
    """A function that turns stored JSON back into a value of the type `hint`."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        [inner] = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        read_inner = _reader(inner)
        return lambda raw: None if raw is None else read_inner(raw)
    if origin is tuple:
        read_item = _reader(typing.get_args(hint)[0])
        return lambda raw: tuple(read_item(item) for item in raw)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        # A dict lookup, not Enum(value) (Python-level, ~1 µs): a stream reads
        # thousands of payloads a second. Every stored value is a member's.
        return {member.value: member for member in hint}.__getitem__
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record_reader(hint)
    return _as_stored  # str, int, bool: JSON has them already


def _as_stored(raw: Any) -> Any:
    return raw


def _record_reader(cls: Any) -> Callable[[dict[str, Any]], Any]:
    hints = typing.get_type_hints(cls)
    plan = []
    for f in _fields(cls):
        keys = tuple(
            dict.fromkeys(k for k in (f.name, _camel(f.name), _LEGACY_NAMES.get(f.name)) if k)
        )
        convert = _reader(hints[f.name])
        # None: the stored value is the field's value (str, int, bool), nothing to call.
        plan.append((f.name, keys, None if convert is _as_stored else convert))

    def read_by_any_name(raw: dict[str, Any]) -> Any:
        values = {}
        for name, keys, convert in plan:
            for key in keys:
                if key in raw:
                    value = raw[key]
                    values[name] = value if convert is None else convert(value)
                    break
        return cls(**values)

    if not all(f.init and not f.kw_only for f in _fields(cls)):
        return read_by_any_name
    # What rows written since payloads were typed hold: every field under its own name.
    # Read positionally, with a conversion only where one is needed; a row with a field
    # missing (a default) or under an old name takes the general way.
    names = tuple(name for name, _, _ in plan)
    converted = tuple((at, convert) for at, (_, _, convert) in enumerate(plan) if convert)

    def read(raw: dict[str, Any]) -> Any:
        try:
            values = [raw[name] for name in names]
        except KeyError:
            return read_by_any_name(raw)
        for at, convert in converted:
            values[at] = convert(values[at])
        return cls(*values)

    return read


# The stdlib's encoder, for what orjson refuses (below); made once, since json.dumps
# with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def dump(value: object) -> str:
    """Compact JSON text of a record (dataclasses → objects with their fields' names,
    enums → their values, tuples → arrays) or of plain JSON values. orjson refuses
    a str UTF-8 cannot carry (a lone surrogate); the stdlib's encoder writes it as it
    always did. (Every stored int is a count or milliseconds: orjson would refuse
    one past 64 bits too, and read one back as a float.)"""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _ENCODER.encode(_plain(value))


def load_json(raw: str) -> Any:
    """The values of stored JSON text: orjson, or the stdlib where orjson refuses what
    the stdlib wrote (an escaped lone surrogate)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def load(cls: type[T], raw: str) -> T:
    return typing.cast(T, _reader(typing.cast(Any, cls))(load_json(raw)))


def load_payload(event_type: str, raw: str) -> EventPayload:
    return typing.cast(EventPayload, _payload_reader(event_type)(load_json(raw)))


@cache
def _payload_reader(event_type: str) -> Reader:
    """The reader of one event type's payload, by the type's stored name (a stream
    reads thousands of events a second: no enum lookup and cast per event)."""
    return _reader(typing.cast(Any, PAYLOAD_TYPES[EventType(event_type)]))


def load_send_result(raw: str) -> SendResult:
    """A stored send result, in today's shape or the flat one of older rows (whose
    outcomes had account_id / account_email beside the other queued fields)."""
    data = load_json(raw)
    if all("queued" in item for item in data["results"]):
        return typing.cast(SendResult, _reader(SendResult)(data))
    outcomes = tuple(_flat_outcome(item) for item in data["results"])
    return SendResult(
        identity=data["identity"],
        accepted=data["accepted"],
        rejected=data["rejected"],
        remaining=data["remaining"],
        results=outcomes,
    )


def _flat_outcome(item: dict[str, Any]) -> RecipientOutcome:
    if item["status"] != "queued":
        return RecipientOutcome(item["to"], reason=RejectReason(item["reason"]))
    return RecipientOutcome(
        item["to"],
        queued=QueuedRecipient(
            pending_id=item["pending_id"],
            conv_id=item["conv_id"],
            send_class=SendClass(item["send_class"]),
            affinity=Affinity(item["affinity"]),
            mailbox=MailboxRef(item["account_id"], item["account_email"]),
            dispatch_at=item["dispatch_at"],
        ),
    )
