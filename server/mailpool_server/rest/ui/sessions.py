"""Dashboard sessions: a random id in a cookie, the API key only in this process's memory.

The key never reaches the browser after sign-in: a stolen cookie is worth one idle
period at most, and signing out (or a restart of the shim) forgets the key for good.
The table is bounded, so a flood of sign-ins evicts the least recently used sessions
rather than growing without end.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "mailpool_ui"
# The double-submit token of the sign-in form, before any session exists.
SIGNIN_COOKIE = "mailpool_ui_signin"
COOKIE_PATH = "/ui"
IDLE_S = 30 * 60
MAX_AGE_S = 12 * 3600
CAPACITY = 10_000


@dataclass
class Flash:
    """A one-time note for the next page (the outcome of a POST, after its redirect)."""

    text: str
    error: bool = False


@dataclass
class Session:
    id: str
    key: str
    csrf: str
    created: float
    seen: float
    flashes: list[Flash] = field(default_factory=list)

    @property
    def key_prefix(self) -> str:
        """What the page shows of the key: the prefix `admin key list` prints."""
        return self.key[:16] + "…"

    def take_flashes(self) -> list[Flash]:
        taken, self.flashes = self.flashes, []
        return taken


def new_token() -> str:
    return secrets.token_urlsafe(32)


class SessionTable:
    """Sessions by id, least recently seen first. A session ends after `idle_s` without
    a request, `max_age_s` after sign-in, on sign-out, or when `capacity` newer ones
    push it out."""

    def __init__(
        self,
        *,
        idle_s: float = IDLE_S,
        max_age_s: float = MAX_AGE_S,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._idle_s = idle_s
        self._max_age_s = max_age_s
        self._capacity = capacity
        self._clock = clock

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, key: str) -> Session:
        now = self._clock()
        self._drop_idle(now)
        while len(self._sessions) >= self._capacity:
            self._sessions.popitem(last=False)
        session = Session(id=new_token(), key=key, csrf=new_token(), created=now, seen=now)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (now seen again), or None."""
        if not session_id:
            return None
        now = self._clock()
        self._drop_idle(now)
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if now - session.created > self._max_age_s:
            del self._sessions[session_id]
            return None
        session.seen = now
        self._sessions.move_to_end(session_id)
        return session

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _drop_idle(self, now: float) -> None:
        # Least recently seen first: stop at the first one still in use.
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if now - oldest.seen <= self._idle_s:
                return
            self._sessions.popitem(last=False)
