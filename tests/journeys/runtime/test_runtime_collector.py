"""A runtime process sets the garbage collector for a long run (``runtime.collector``)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from wayline.journeys.runtime import JourneyRuntime
from wayline.journeys.runtime.collector import YOUNG_THRESHOLD, tune_for_runtime
from wayline.storage.db import Database


@pytest.fixture
def collector() -> Iterator[None]:
    """Leaves the process's collector as it found it."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_tuning_freezes_what_is_alive_and_raises_the_young_threshold() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    tune_for_runtime()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)


@pytest.mark.usefixtures("collector")
def test_a_higher_threshold_set_by_the_application_is_kept() -> None:
    gc.set_threshold(YOUNG_THRESHOLD * 5, 20, 30)
    tune_for_runtime()
    assert gc.get_threshold() == (YOUNG_THRESHOLD * 5, 20, 30)


@pytest.mark.usefixtures("collector")
def test_run_forever_tunes_the_collector(db: Database) -> None:
    gc.set_threshold(700, 10, 10)
    stop = threading.Event()
    stop.set()  # one look at the loop, then out
    JourneyRuntime(db, idle_seconds=0.0).run_forever(stop)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


@pytest.mark.usefixtures("collector")
def test_garbage_is_collected_before_the_rest_is_frozen() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    garbage = weakref.ref(Node())  # a cycle: garbage only the collector can free
    gc.unfreeze()
    tune_for_runtime()
    assert garbage() is None
