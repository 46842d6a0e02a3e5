"""Identifier formats of the contract, and the random bytes behind them."""

from __future__ import annotations

import os
import re
import threading

from ulid import ULID

CONV_ID = re.compile(r"^conv_[0-9a-f]+$")

# Bytes drawn from the OS's CSPRNG per system call, handed out once each.
_DRAW = 4096


class _Entropy:
    """os.urandom in 4 KiB draws. A send makes five or six random ids (its
    conversation, message, queued send, Message-ID, event and request ids), each a
    getrandom system call through `secrets`: here one in a few hundred is. The bytes
    are the same kernel CSPRNG's, none handed out twice; a forked child starts a draw
    of its own, so it never repeats its parent's."""

    __slots__ = ("_at", "_bytes", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0

    def take(self, size: int) -> bytes:
        with self._lock:
            at = self._at
            if at + size > len(self._bytes):
                self._bytes, at = os.urandom(max(_DRAW, size)), 0
            self._at = at + size
            return self._bytes[at : at + size]

    def forget(self) -> None:
        self._lock = threading.Lock()
        self._bytes, self._at = b"", 0


_ENTROPY = _Entropy()
os.register_at_fork(after_in_child=_ENTROPY.forget)


def random_hex(size: int) -> str:
    """`size` random bytes as 2 × size lowercase hex digits (secrets.token_hex's form)."""
    return _ENTROPY.take(size).hex()


def new_id(prefix: str) -> str:
    """prefix + '_' + 16 random lowercase hex digits (acc_, conv_, psn_, msg_, …)."""
    return f"{prefix}_{random_hex(8)}"


def new_event_id(ms: int) -> str:
    """evt_ + a ULID whose time part is the event's commit time."""
    return "evt_" + str(ULID.from_bytes(ms.to_bytes(6, "big") + _ENTROPY.take(10)))
