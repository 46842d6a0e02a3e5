from __future__ import annotations

import datetime as dt

import pytest

from mailpool_server.service.clock import (
    UTC,
    FakeClock,
    iso_ms,
    next_midnight_ms,
    now_ms,
    to_ms,
    utc_day,
)


def test_day_and_reset_follow_utc_midnight() -> None:
    before = to_ms(dt.datetime(2026, 4, 27, 23, 59, 59, 999000, tzinfo=UTC))
    assert utc_day(before) == "2026-04-27"
    assert utc_day(before + 1) == "2026-04-28"
    assert next_midnight_ms(before) == before + 1
    assert next_midnight_ms(before + 1) == before + 1 + 86_400_000


def test_a_non_utc_offset_still_counts_in_utc() -> None:
    # 01:30 in UTC+02:00 is still the previous UTC day.
    local = dt.datetime(2026, 4, 28, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert utc_day(to_ms(local)) == "2026-04-27"


def test_iso_format_matches_contract() -> None:
    assert iso_ms(1777278929000) == "2026-04-27T08:35:29.000Z"
    assert iso_ms(1777278929007) == "2026-04-27T08:35:29.007Z"


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(dt.datetime(2026, 4, 27, 23, 0, tzinfo=UTC))
    first = now_ms(clock)
    assert now_ms(clock) == first
    clock.advance(hours=1)
    assert utc_day(now_ms(clock)) == "2026-04-28"
    with pytest.raises(ValueError, match="aware"):
        FakeClock(dt.datetime(2026, 1, 1))
