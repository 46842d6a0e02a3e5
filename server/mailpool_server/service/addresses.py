"""Email address syntax: what counts as a deliverable address (RFC 5321/5322 dot-atom
local part, a hostname with a top-level domain; no quoted strings or IP literals)."""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = rf"{_ATEXT}(?:\.{_ATEXT})*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"(?:{_LABEL}\.)+[A-Za-z]{{2,63}}"
_ADDRESS = re.compile(rf"^{_LOCAL}@{_DOMAIN}$")
# Handles and mailbox addresses may live on internal domains such as mailpool.local.
_INTERNAL = re.compile(rf"^{_LOCAL}@(?:{_LABEL}\.)*{_LABEL}$")

MAX_ADDRESS = 254
MAX_LOCAL = 64


def _lengths_ok(address: str) -> bool:
    return len(address) <= MAX_ADDRESS and len(address.partition("@")[0]) <= MAX_LOCAL


def is_deliverable(address: str) -> bool:
    """True for an address mail can be sent to."""
    return _lengths_ok(address) and _ADDRESS.match(address) is not None


def is_handle(address: str) -> bool:
    """True for something shaped like an address, internal domains allowed."""
    return _lengths_ok(address) and _INTERNAL.match(address) is not None


def normalize(address: str) -> str:
    """The form addresses are stored and compared in: trimmed, lowercase."""
    return address.strip().lower()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]
