"""The usage graph's geometry: one bar per day (accepted sends) and the daily cap as a
line, in SVG user units. Computed here so the template only places shapes, and so a
test can check that every bar is as tall as its number says."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mailpool.v1 import identity_service_pb2

WIDTH = 640
HEIGHT = 220
LEFT = 44  # room for the axis numbers
RIGHT = 8
TOP = 10
BOTTOM = 24  # room for the day labels
GAP = 0.2  # of a day's slot, between bars


@dataclass(frozen=True)
class Bar:
    day: str
    accepted: int
    cap: int
    x: float
    y: float
    width: float
    height: float
    label_x: float  # the middle of the bar's slot
    show_label: bool  # every 7th day and the last, so labels never overlap


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class UsageGraph:
    width: int
    height: int
    left: int
    right_x: int
    baseline: float
    top_value: int
    bars: list[Bar]
    ticks: list[Tick]
    cap_points: str  # an SVG polyline: the cap of each day, as steps
    total: int
    peak: int

    @property
    def description(self) -> str:
        if not self.bars:
            return "No usage recorded."
        first, last = self.bars[0], self.bars[-1]
        return (
            f"{self.total} sends from {first.day} to {last.day}; busiest day {self.peak}; "
            f"today {last.accepted} of a cap of {last.cap}."
        )


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 x 10^n at or above value (at least 1): round axis ends."""
    if value <= 1:
        return 1
    power: int = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def build(days: Sequence[identity_service_pb2.IdentityUsageDay]) -> UsageGraph:
    """Days oldest first, as GetUsageHistory returns them."""
    peak = max((d.accepted for d in days), default=0)
    top = nice_ceiling(max(peak, max((d.cap for d in days), default=0)))
    plot_width = WIDTH - LEFT - RIGHT
    baseline = float(HEIGHT - BOTTOM)
    plot_height = baseline - TOP
    slot = plot_width / max(len(days), 1)

    def y_of(value: int) -> float:
        return round(baseline - plot_height * value / top, 2)

    bars = []
    cap_points = []
    for index, day in enumerate(days):
        x = LEFT + index * slot
        height = round(plot_height * day.accepted / top, 2)
        bars.append(
            Bar(
                day=day.day,
                accepted=day.accepted,
                cap=day.cap,
                x=round(x + slot * GAP / 2, 2),
                y=round(baseline - height, 2),
                width=round(slot * (1 - GAP), 2),
                height=height,
                label_x=round(x + slot / 2, 2),
                show_label=(len(days) - 1 - index) % 7 == 0,
            )
        )
        cap_points.append(f"{round(x, 2)},{y_of(day.cap)} {round(x + slot, 2)},{y_of(day.cap)}")
    ticks = [Tick(value=v, y=y_of(v)) for v in sorted({top * n // 4 for n in range(5)})]
    return UsageGraph(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right_x=WIDTH - RIGHT,
        baseline=baseline,
        top_value=top,
        bars=bars,
        ticks=ticks,
        cap_points=" ".join(cap_points),
        total=sum(d.accepted for d in days),
        peak=peak,
    )
