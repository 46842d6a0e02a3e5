"""The usage graph's geometry: bars in proportion to their numbers, the cap a line."""

from __future__ import annotations

import pytest

from mailpool.v1 import identity_service_pb2
from mailpool_server.rest.ui.usage_graph import build, nice_ceiling


def _days(*values: tuple[int, int]) -> list[identity_service_pb2.IdentityUsageDay]:
    return [
        identity_service_pb2.IdentityUsageDay(day=f"2026-04-{n + 1:02d}", accepted=a, cap=c)
        for n, (a, c) in enumerate(values)
    ]


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (150, 200), (500, 500)],
)
def test_axis_ends_are_round(value: int, ceiling: int) -> None:
    assert nice_ceiling(value) == ceiling


def test_bars_are_as_tall_as_their_numbers_and_the_cap_is_a_line() -> None:
    graph = build(_days((0, 150), (75, 150), (150, 150), (30, 150)))
    plot = graph.baseline - 10  # TOP
    assert graph.top_value == 200
    assert [b.height for b in graph.bars] == [0, plot * 75 / 200, plot * 150 / 200, plot * 30 / 200]
    assert all(b.y + b.height == pytest.approx(graph.baseline) for b in graph.bars)
    cap_ys = {float(point.split(",")[1]) for point in graph.cap_points.split()}
    assert cap_ys == {graph.baseline - plot * 150 / 200}
    # Bars sit side by side, in day order, without overlapping.
    assert all(a.x + a.width < b.x for a, b in zip(graph.bars, graph.bars[1:], strict=False))
    assert graph.description == (
        "255 sends from 2026-04-01 to 2026-04-04; busiest day 150; today 30 of a cap of 150."
    )


def test_a_day_over_the_cap_still_fits_and_a_changed_cap_steps() -> None:
    graph = build(_days((10, 150), (600, 500)))
    assert graph.top_value == 1000
    assert max(b.y for b in graph.bars) <= graph.baseline
    assert min(b.y for b in graph.bars) >= 10
    steps = [float(p.split(",")[1]) for p in graph.cap_points.split()]
    assert steps[0] == steps[1] > steps[2] == steps[3]  # 150, then 500 (higher up)


def test_labels_mark_every_seventh_day_ending_today() -> None:
    graph = build(_days(*[(0, 150)] * 30))
    labelled = [b.day for b in graph.bars if b.show_label]
    assert labelled[-1] == graph.bars[-1].day
    assert len(labelled) == 5
