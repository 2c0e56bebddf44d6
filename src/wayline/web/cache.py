"""A cache of heavy analytics results (the journey map, funnels, paths, retention) for the
dashboard and the REST API.

The map of a 10 M-event store takes seconds to build; a page must answer in well under a
second. So each result is kept per *key* (what was asked: workspace, kind, parameters) together
with the *fingerprint* of the analytics store it was computed from (the DuckDB file's and its
WAL's size and modification time):

- same key, same fingerprint, younger than ``ttl``: served from memory (a **hit**);
- same key, but new events arrived (another fingerprint) or the entry is older than ``ttl``
  (results that depend on "now", such as retention, move with the clock): the old result is
  served at once, marked **stale**, and one background thread recomputes it — the next request
  sees fresh numbers without anyone waiting for them;
- unknown key: computed now (a **miss**); concurrent requests for the same key wait for the one
  computation instead of starting their own.

Entries are also written to ``<data folder>/cache/analytics/`` so that a freshly started worker
serves the last result at once (as stale when the store has changed since) instead of
rebuilding it while the user waits. The files are pickles written by this process for itself,
in the data folder that already holds the store's own data; a file that cannot be read is
ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from wayline.analytics.backend import Backend, DuckDBBackend
from wayline.config import Settings
from wayline.storage.analytics_access import analytics_reader
from wayline.storage.eventstore import EventStore

log = logging.getLogger(__name__)

T = TypeVar("T")
State = Literal["hit", "stale", "miss", "off"]

DEFAULT_TTL_SECONDS = 600.0
DEFAULT_MAX_ENTRIES = 256


def store_fingerprint(settings: Settings) -> str:
    """What changes when events land in the analytics store: size and mtime of the DuckDB file
    and of its write-ahead log (recent writes may sit there until a checkpoint)."""
    path = Path(settings.resolved_analytics_path)
    parts = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            st = p.stat()
        except FileNotFoundError:
            parts.append("-")
            continue
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


@dataclass(frozen=True)
class Cached(Generic[T]):
    """A result, when it was computed (epoch seconds), and how this request got it."""

    value: T
    computed_at: float
    state: State


@dataclass
class _Entry:
    value: Any
    fingerprint: str
    computed_at: float


class ResultCache:
    """Results by key, each tagged with the store fingerprint it was computed from.

    Args:
        persist_dir: where entries are also written (None: memory only).
        ttl: seconds after which a result is recomputed in the background even if no event
            arrived.
        background: refresh stale entries in a thread (False: recompute in the request; tests).
        clock: epoch seconds (injected in tests).
    """

    def __init__(
        self,
        *,
        persist_dir: Path | None = None,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        background: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.persist_dir = persist_dir
        self.ttl = ttl
        self.max_entries = max_entries
        self.background = background
        self.clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._refreshing: set[Hashable] = set()

    # -- public -------------------------------------------------------------------------------

    def get(
        self, key: Hashable, fingerprint: str, compute: Callable[[], T], *, enabled: bool = True
    ) -> Cached[T]:
        """The result for ``key``: cached, stale (and refreshing), or computed now."""
        if not enabled:
            return Cached(compute(), self.clock(), "off")
        entry = self._lookup(key)
        if entry is not None and not self._fresh(entry, fingerprint):
            # Another process (a worker, ``wayline serve``'s prewarmer) may have stored a newer
            # result since this one was read.
            newer = self._read_file(key)
            if newer is not None and newer.computed_at > entry.computed_at:
                with self._lock:
                    self._entries[key] = newer
                entry = newer
        if entry is not None:
            if self._fresh(entry, fingerprint):
                return Cached(entry.value, entry.computed_at, "hit")
            # A result of the empty store ("-": no file yet) is cheap to replace and would only
            # hide the first import: recompute it now.
            if self.background and not entry.fingerprint.startswith("-"):
                self._refresh_later(key, fingerprint, compute)
                return Cached(entry.value, entry.computed_at, "stale")
        with self._key_lock(key):
            # Another request may have computed it while this one waited for the lock.
            entry = self._lookup(key)
            if entry is not None and self._fresh(entry, fingerprint):
                return Cached(entry.value, entry.computed_at, "hit")
            value = compute()
            now = self._store(key, fingerprint, value)
        return Cached(value, now, "miss")

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for background refreshes to finish (benchmarks and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._refreshing:
                    return
            time.sleep(0.01)

    # -- internals ----------------------------------------------------------------------------

    def _fresh(self, entry: _Entry, fingerprint: str) -> bool:
        return entry.fingerprint == fingerprint and self.clock() - entry.computed_at < self.ttl

    def _key_lock(self, key: Hashable) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _lookup(self, key: Hashable) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
        entry = self._read_file(key)
        if entry is not None:
            with self._lock:
                self._entries.setdefault(key, entry)
        return entry

    def _store(self, key: Hashable, fingerprint: str, value: Any) -> float:
        now = self.clock()
        entry = _Entry(value, fingerprint, now)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        self._write_file(key, entry)
        return now

    def _refresh_later(self, key: Hashable, fingerprint: str, compute: Callable[[], Any]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def run() -> None:
            try:
                with self._key_lock(key):
                    self._store(key, fingerprint, compute())
            except Exception:
                # The stale result stays; the next request tries again.
                log.exception("refreshing a cached analytics result failed")
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=run, name="wayline-cache-refresh", daemon=True).start()

    def _file(self, key: Hashable) -> Path | None:
        if self.persist_dir is None:
            return None
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
        return self.persist_dir / f"{digest}.pickle"

    def _read_file(self, key: Hashable) -> _Entry | None:
        path = self._file(key)
        if path is None or not path.exists():
            return None
        try:
            with path.open("rb") as f:
                stored_key, entry = pickle.load(f)
        except Exception:
            # Written by an older version, or cut short: rebuild it.
            return None
        return entry if stored_key == key and isinstance(entry, _Entry) else None

    def _write_file(self, key: Hashable, entry: _Entry) -> None:
        path = self._file(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with tmp.open("wb") as f:
                pickle.dump((key, entry), f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)
        except Exception:
            log.warning("could not persist a cached analytics result to %s", path, exc_info=True)


_APP_CACHES_LOCK = threading.Lock()


def cache_of(state: Any, settings: Settings) -> ResultCache:
    """The app's cache (one per app, created on first use, persisted in the data folder)."""
    cache: ResultCache | None = getattr(state, "analytics_cache", None)
    if cache is not None:
        return cache
    with _APP_CACHES_LOCK:
        cache = getattr(state, "analytics_cache", None)
        if cache is None:
            cache = ResultCache(persist_dir=Path(settings.home) / "cache" / "analytics")
            state.analytics_cache = cache
    return cache


def run_on_store(settings: Settings, compute: Callable[[Backend], T]) -> T:
    """``compute`` on the analytics store, opened read-only for this call only; on an empty
    in-memory store when no event was ever stored, so the result is empty but well-formed."""
    with analytics_reader(settings) as store:
        if store is not None:
            return compute(DuckDBBackend(store.con))
    with EventStore(":memory:") as empty:
        return compute(DuckDBBackend(empty.con))


def cached_result(
    state: Any,
    key: Hashable,
    compute: Callable[[Backend], T],
    *,
    enabled: bool = True,
) -> Cached[T]:
    """``compute``'s result for ``key`` from the cache of the app whose ``state`` is given (it
    holds the app's settings; see the module docstring)."""
    settings: Settings = state.settings
    cache = cache_of(state, settings)
    return cache.get(
        key, store_fingerprint(settings), lambda: run_on_store(settings, compute), enabled=enabled
    )
