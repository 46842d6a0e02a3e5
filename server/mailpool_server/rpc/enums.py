"""Domain enums ⇄ proto enums, matched by name over the proto descriptors.

A proto enum `SendClass` has values `SEND_CLASS_UNSPECIFIED = 0`, `SEND_CLASS_WARM`, …;
the domain enum `SendClass` has members `WARM`, …. The prefix comes from the zero
value's name, so no value is typed out twice, and a member without its proto twin (or
the reverse) fails at import, not on the first request that meets it.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Generic, TypeVar

from mailpool.v1 import (
    conversation_pb2,
    error_pb2,
    event_pb2,
    identity_pb2,
    mailbox_pb2,
    send_pb2,
)
from mailpool_server.service.errors import ErrorReason
from mailpool_server.service.events import BounceKind, CancelReason
from mailpool_server.service.models import (
    Affinity,
    Direction,
    IdentityState,
    PendingStatus,
    RecipientStatus,
    RejectReason,
    SendClass,
    Transport,
)
from mailpool_server.service.policy import Tier

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

E = TypeVar("E", bound=enum.Enum)
P = TypeVar("P", bound=int)


class EnumMap(Generic[E, P]):
    """One domain enum and its proto enum, both ways."""

    def __init__(self, domain: type[E], proto: _EnumTypeWrapper[P]) -> None:
        descriptor = proto.DESCRIPTOR
        self.prefix = descriptor.values_by_number[0].name.removesuffix("UNSPECIFIED")
        self._to_proto: dict[E, P] = {}
        for member in domain:
            value = descriptor.values_by_name.get(self.prefix + member.name)
            if value is None:
                raise ValueError(f"{descriptor.full_name} has no {self.prefix}{member.name}")
            self._to_proto[member] = proto.Value(value.name)
        self._from_proto = {number: member for member, number in self._to_proto.items()}
        unmatched = set(descriptor.values_by_number) - {0} - set(self._from_proto)
        if unmatched:
            names = [descriptor.values_by_number[n].name for n in sorted(unmatched)]
            raise ValueError(f"{domain.__name__} lacks {', '.join(names)}")

    @property
    def members(self) -> list[E]:
        return list(self._to_proto)

    def to_proto(self, member: E) -> P:
        return self._to_proto[member]

    def from_proto(self, number: int) -> E:
        """The domain member; KeyError for UNSPECIFIED or a number this build lacks."""
        return self._from_proto[number]  # type: ignore[index]


TIERS = EnumMap(Tier, identity_pb2.Tier)
IDENTITY_STATES = EnumMap(IdentityState, identity_pb2.IdentityState)
TRANSPORTS = EnumMap(Transport, mailbox_pb2.MailboxTransport)
SEND_CLASSES = EnumMap(SendClass, send_pb2.SendClass)
AFFINITIES = EnumMap(Affinity, send_pb2.Affinity)
RECIPIENT_STATUSES = EnumMap(RecipientStatus, send_pb2.RecipientStatus)
REJECT_REASONS = EnumMap(RejectReason, send_pb2.RejectReason)
DIRECTIONS = EnumMap(Direction, conversation_pb2.MessageDirection)
SEND_STATES = EnumMap(PendingStatus, conversation_pb2.SendState)
CANCEL_REASONS = EnumMap(CancelReason, event_pb2.CancelReason)
BOUNCE_KINDS = EnumMap(BounceKind, event_pb2.BounceKind)
ERROR_REASONS = EnumMap(ErrorReason, error_pb2.ErrorReason)
