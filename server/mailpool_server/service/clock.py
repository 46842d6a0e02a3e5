"""Time, injectable: every rule that depends on the day or a timer asks a Clock."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

UTC = dt.UTC
MS_PER_DAY = 86_400_000


class Clock(Protocol):
    """Tells the current time as an aware UTC datetime."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to; tests move it across midnight UTC."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 4, 27, 8, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")

    def now(self) -> dt.datetime:
        return self._now

    def set(self, when: dt.datetime) -> None:
        self._now = when.astimezone(UTC)

    def advance(self, **delta: float) -> None:
        self._now += dt.timedelta(**delta)


def to_ms(when: dt.datetime) -> int:
    """Unix milliseconds of an aware datetime."""
    return int(when.timestamp() * 1000)


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, UTC)


def now_ms(clock: Clock) -> int:
    return to_ms(clock.now())


def utc_day(ms: int) -> str:
    """The UTC date of a time as 'YYYY-MM-DD': the key of every daily counter."""
    return from_ms(ms).date().isoformat()


def next_midnight_ms(ms: int) -> int:
    """The first instant of the next UTC day: when daily caps reset."""
    return (ms // MS_PER_DAY + 1) * MS_PER_DAY


def iso_ms(ms: int) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as the HTTP contract shows it."""
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
