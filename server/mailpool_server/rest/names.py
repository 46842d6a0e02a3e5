"""The contract's names for proto values: one rule each, used by render.py for the value on
the wire and by shapes.py for the list a schema allows, so the two cannot drift."""

from __future__ import annotations

from typing import Protocol

from google.protobuf.descriptor import EnumDescriptor

from mailpool.v1 import event_pb2


class ProtoEnum(Protocol):
    """A generated enum (send_pb2.SendClass, ...): what the rules read of it."""

    DESCRIPTOR: EnumDescriptor


def _prefix(enum: ProtoEnum) -> str:
    # The style guide gives every enum a zero value X_UNSPECIFIED and prefixes the others
    # with X_, so the zero value names the prefix and nobody has to spell it again.
    zero = enum.DESCRIPTOR.values_by_number[0].name
    prefix = zero.removesuffix("UNSPECIFIED")
    assert prefix != zero and prefix.endswith("_"), f"{zero}: not an X_UNSPECIFIED zero value"
    return prefix


def enum_name(enum: ProtoEnum, number: int) -> str:
    """SEND_CLASS_COLD_FOLLOWUP → 'cold_followup'."""
    return enum.DESCRIPTOR.values_by_number[number].name.removeprefix(_prefix(enum)).lower()


def enum_names(enum: ProtoEnum) -> tuple[str, ...]:
    """Every name enum_name can return, in proto order; the zero value is never sent."""
    return tuple(enum_name(enum, v.number) for v in enum.DESCRIPTOR.values if v.number != 0)


def event_type(payload_case: str) -> str:
    """Event.payload case → the event's wire name: the first '_' becomes '.'
    (email_send_failed_permanently → email.send_failed_permanently, mailbox_replaced →
    mailbox.replaced). The server names types itself (service/events.py); test_shapes.py
    checks this rule against its list and against the encoder's choice of case."""
    return payload_case.replace("_", ".", 1)


EVENT_TYPES: tuple[str, ...] = tuple(
    event_type(field.name) for field in event_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields
)
