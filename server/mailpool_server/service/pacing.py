"""When a cold send may go out: an identity's optional working-hours window."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from mailpool_server.service.clock import from_ms, to_ms


def next_working_time(
    ms: int, timezone: str | None, start_min: int | None, end_min: int | None
) -> int:
    """The first instant at or after `ms` inside [start, end) local time, every day.

    No window configured: `ms` itself. A window that wraps midnight (22:00-06:00) is
    allowed; start == end means always open.
    """
    if timezone is None or start_min is None or end_min is None or start_min == end_min:
        return ms
    zone = ZoneInfo(timezone)
    local = from_ms(ms).astimezone(zone)
    minute = local.hour * 60 + local.minute
    inside = (
        (start_min <= minute < end_min)
        if start_min < end_min
        else (minute >= start_min or minute < end_min)
    )
    if inside:
        return ms
    day = local.date()
    if start_min < end_min and minute >= end_min:
        day += dt.timedelta(days=1)
    start = dt.datetime.combine(day, dt.time(start_min // 60, start_min % 60), zone)
    return to_ms(start)
