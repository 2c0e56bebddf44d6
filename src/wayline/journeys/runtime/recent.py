"""A value looked up again only after a while: settings and templates change rarely, sends are
many, and an edit in the dashboard should still reach sends within ``ttl`` seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """``load(key)``, remembered for ``ttl`` seconds: settings change rarely, sends are many."""

    def __init__(self, load: Callable[[K], V], ttl: float) -> None:
        self.load = load
        self.ttl = ttl
        self._values: dict[K, tuple[V, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, key: K) -> V:
        found = self._values.get(key)
        if found is not None and time.monotonic() - found[1] < self.ttl:
            return found[0]
        value = self.load(key)
        with self._lock:
            self._values[key] = (value, time.monotonic())
        return value
