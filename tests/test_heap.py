"""heap.settle: what `mailpool serve` does to the collector once it serves."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mailpool_server import heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_settle_freezes_what_exists_and_collects_the_young_less_often() -> None:
    _, middle, oldest = gc.get_threshold()
    kept: list[object] = [object(), {"a": []}]  # a container alive before settling
    heap.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (heap.YOUNG_GENERATION_THRESHOLD, middle, oldest)
    # What existed is in the permanent generation: no generation's list holds it.
    assert gc.is_tracked(kept)
    assert not any(found is kept for g in range(3) for found in gc.get_objects(g))
