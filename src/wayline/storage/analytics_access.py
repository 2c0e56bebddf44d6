"""Reading the analytics store from processes that do not own it (API and dashboard workers).

DuckDB lets one process open a file for writing, or several for reading, never both at once. The
process that moves events in (``wayline serve``'s mover, an import) opens the file for one batch
at a time; readers open it read-only for one request at a time. Either side that finds the file
locked waits a little and tries again, so both make progress; a reader that still cannot get in
after ``timeout`` seconds gets :class:`~wayline.errors.Busy` (a 503 with ``Retry-After``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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


def open_when_free(
    path: Path,
    *,
    read_only: bool,
    timeout: float,
    first_delay: float = 0.005,
    max_delay: float = 0.2,
    on_wait: Callable[[], None] | None = None,
) -> EventStore:
    """The store at ``path``, waiting with growing pauses while someone else holds it.

    ``on_wait`` is called once, before the first pause (to tell a user why nothing moves).
    After ``timeout`` seconds the lock error is raised; any other error at once.
    """
    deadline = time.monotonic() + timeout
    delay = first_delay
    waited = False
    while True:
        try:
            return EventStore(path, read_only=read_only)
        except duckdb.Error as exc:
            if not is_lock_error(exc) or time.monotonic() >= deadline:
                raise
        if not waited and on_wait is not None:
            on_wait()
        waited = True
        time.sleep(delay)
        delay = min(delay * 2, max_delay)


@contextmanager
def analytics_reader(settings: Settings, *, timeout: float = 10.0) -> Iterator[EventStore | None]:
    """The analytics store opened read-only, or ``None`` when no event was ever stored."""
    path = Path(settings.resolved_analytics_path)
    if not path.exists():
        yield None
        return
    try:
        store = open_when_free(path, read_only=True, timeout=timeout)
    except duckdb.Error as exc:
        if is_lock_error(exc):
            raise Busy("the analytics store is busy (events are being written); retry") from exc
        raise
    try:
        yield store
    finally:
        store.close()
