"""Reading the analytics store from processes that do not own it (API and dashboard workers).

DuckDB lets one process open a file for writing, or several for reading, never both at once. The
process that moves events in (``wayline serve``'s mover, an import) opens the file for one batch
at a time; readers open it read-only for one request at a time. Either side that finds the file
locked waits a little and tries again, so both make progress; a reader that still cannot get in
after ``timeout`` seconds gets :class:`~wayline.errors.Busy` (a 503 with ``Retry-After``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from wayline.config import Settings
from wayline.errors import Busy
from wayline.storage.eventstore import EventStore


def is_lock_error(exc: BaseException) -> bool:
    """DuckDB's refusal to open a file someone else holds: another process ("Could not set
    lock on file"), or this one with the other access mode (an import writing in a thread of
    the same server: "... with a different configuration")."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and (
        "could not set lock" in text or "different configuration" in text
    )


@contextmanager
def analytics_reader(settings: Settings, *, timeout: float = 10.0) -> Iterator[EventStore | None]:
    """The analytics store opened read-only, or ``None`` when no event was ever stored."""
    path = Path(settings.resolved_analytics_path)
    if not path.exists():
        yield None
        return
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            store = EventStore(path, read_only=True)
            break
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise Busy("the analytics store is busy (events are being written); retry") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    try:
        yield store
    finally:
        store.close()
