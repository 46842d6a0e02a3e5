"""Python types → JSON Schema (2020-12, the dialect of OpenAPI 3.1) for the shapes in
shapes.py. It knows only the forms those shapes use and raises on anything else, so a new
kind of field fails loudly instead of becoming an empty (accept-all) schema."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

JSON = dict[str, Any]


# Markers for typing.Annotated: what a schema says beyond the Python type.
@dataclass(frozen=True)
class Doc:
    """→ description."""

    text: str


@dataclass(frozen=True)
class Pattern:
    """→ pattern (a string's format, e.g. an id's prefix)."""

    regex: str


@dataclass(frozen=True)
class Minimum:
    """→ minimum."""

    value: int


@dataclass(frozen=True)
class Choice:
    """→ enum: a string from a closed list (derived from the protos, see names.py)."""

    values: tuple[str, ...]


def _marker(marker: object) -> JSON:
    match marker:
        case Doc(text):
            return {"description": text}
        case Pattern(regex):
            return {"pattern": regex}
        case Minimum(value):
            return {"minimum": value}
        case Choice(values):
            return {"enum": list(values)}
    raise TypeError(f"unknown schema marker {marker!r}")


_SCALARS: dict[object, str] = {str: "string", int: "integer", bool: "boolean"}
_NONE = type(None)


def schema(tp: Any, refs: Mapping[Any, str]) -> JSON:
    """The schema of `tp`, where a type named in `refs` is a $ref to that component."""
    if tp in refs:
        return {"$ref": f"#/components/schemas/{refs[tp]}"}
    return expand(tp, refs)


def expand(tp: Any, refs: Mapping[Any, str]) -> JSON:
    """The schema of `tp` itself (for defining a component); nested types may be $refs."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        result = schema(args[0], refs)
        for marker in args[1:]:
            result.update(_marker(marker))
        return result
    if is_typeddict(tp):
        return _object(tp, refs)
    if origin is Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": schema(args[0], refs)}
    if origin is dict and args[0] is str:
        return {"type": "object", "additionalProperties": schema(args[1], refs)}
    if origin in (Union, types.UnionType):
        if _NONE in args:  # X | None: a value or null
            rest = [schema(a, refs) for a in args if a is not _NONE]
            return {"anyOf": [*rest, {"type": "null"}]}
        # Alternatives are closed objects that differ in their keys or a const, so exactly
        # one matches: oneOf, which says so.
        return {"oneOf": [schema(a, refs) for a in args]}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    raise TypeError(f"no schema for {tp!r}")


def _object(typed_dict: Any, refs: Mapping[Any, str]) -> JSON:
    """A closed object: the shim renders exactly these keys, so anything else is a bug."""
    hints = get_type_hints(typed_dict, include_extras=True)
    properties = {}
    for key, hint in hints.items():
        if get_origin(hint) in (Required, NotRequired):
            hint = get_args(hint)[0]
        properties[key] = schema(hint, refs)
    return {
        "type": "object",
        "properties": properties,
        "required": [key for key in hints if key in typed_dict.__required_keys__],
        "additionalProperties": False,
    }
