"""The cyclic garbage collector, set for a process that moves customers for hours.

A batch of 500 customers allocates hundreds of thousands of short-lived containers (rows,
states, effects, records) that reference counting frees on its own; few of them form cycles.
With CPython's default thresholds (700, 10, 10) the collector still runs a young collection
every 700 allocations, and the containers a batch holds for its whole transaction survive
them, pile up as "long-lived" objects and trigger full collections that walk the whole heap:
SQLAlchemy's metadata, the journeys, every imported module. Measured on SQLite, one process,
40,000 transitions: 2.0 s of 10–11 s CPU in the collector (19 full collections of ~80 ms).

So a runtime process, once started:

- collects once, then moves the objects still alive (modules, metadata, the catalogue) to the
  permanent generation (:func:`gc.freeze`): they live as long as the process, and full
  collections stop walking them (the collection first, so no garbage is frozen with them);
- collects the young generation every :data:`YOUNG_THRESHOLD` allocations rather than 700, so
  a batch's working set is not promoted bit by bit into the old generations.

Together: 0.15 s in the collector for the same run. Cycles are still collected, less often.
"""

from __future__ import annotations

import gc
import threading

#: Allocations between two young collections (CPython's default: 700).
YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()


def tune_for_runtime() -> None:
    """Freeze the objects alive now and raise the young threshold (module docstring).

    Process-wide, and idempotent: a threshold already set higher (by the application) is
    kept.
    """
    with _lock:
        gc.collect()
        gc.freeze()
        young, middle, old = gc.get_threshold()
        if young < YOUNG_THRESHOLD:
            gc.set_threshold(YOUNG_THRESHOLD, middle, old)
