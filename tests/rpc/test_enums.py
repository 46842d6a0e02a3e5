"""Domain enums and proto enums are one fact: each side has the other's every value."""

from __future__ import annotations

import enum

import pytest

from mailpool.v1 import error_pb2, send_pb2
from mailpool_server.rpc import enums
from mailpool_server.rpc.enums import EnumMap
from mailpool_server.service import errors

MAPS = [value for value in vars(enums).values() if isinstance(value, EnumMap)]


@pytest.mark.parametrize("mapping", MAPS, ids=lambda m: m.prefix.rstrip("_"))
def test_every_member_round_trips(mapping: EnumMap[enum.Enum, int]) -> None:
    numbers = {mapping.to_proto(member) for member in mapping.members}
    assert 0 not in numbers  # UNSPECIFIED is never sent
    for member in mapping.members:
        assert mapping.from_proto(mapping.to_proto(member)) is member


def test_a_member_without_a_proto_twin_fails_at_import_time() -> None:
    class Wider(enum.StrEnum):
        WARM = "warm"
        LUKEWARM = "lukewarm"

    with pytest.raises(ValueError, match="SEND_CLASS_LUKEWARM"):
        EnumMap(Wider, send_pb2.SendClass)

    class Narrower(enum.StrEnum):
        WARM = "warm"

    with pytest.raises(ValueError, match="SEND_CLASS_COLD_FIRST_CONTACT"):
        EnumMap(Narrower, send_pb2.SendClass)


def _error_classes() -> list[type[errors.MailpoolError]]:
    found, todo = [], [errors.MailpoolError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_domain_reason_is_a_proto_reason_and_back() -> None:
    proto_names = {
        v.name.removeprefix("ERROR_REASON_")
        for v in error_pb2.ErrorReason.DESCRIPTOR.values
        if v.number != 0
    }
    assert {r.value for r in errors.ErrorReason} == proto_names
    class_reasons = {cls.reason for cls in _error_classes()}
    # AllRecipientsRejected picks its reason per instance (cap, no accounts, other).
    rejection_reasons = {
        errors.ErrorReason.CAP_EXCEEDED,
        errors.ErrorReason.NO_ACCOUNTS,
        errors.ErrorReason.RECIPIENTS_REJECTED,
    }
    assert class_reasons | rejection_reasons == set(errors.ErrorReason)
