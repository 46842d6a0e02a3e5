"""Identifier formats of the contract."""

from __future__ import annotations

import re
import secrets

from ulid import ULID

CONV_ID = re.compile(r"^conv_[0-9a-f]+$")


def new_id(prefix: str) -> str:
    """prefix + '_' + 16 random lowercase hex digits (acc_, conv_, psn_, msg_, …)."""
    return f"{prefix}_{secrets.token_hex(8)}"


def new_event_id(ms: int) -> str:
    """evt_ + a ULID whose time part is the event's commit time."""
    return "evt_" + str(ULID.from_timestamp(ms / 1000))
