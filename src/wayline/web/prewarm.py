"""Computing the dashboard's default views before anyone asks for them.

The journey map of a 10 M-event store takes tens of seconds to build, the paths several: the
first visit after a start, or after an import, would wait that long. ``wayline serve`` runs a
:class:`Prewarmer` in a background thread of its parent process (beside the mover): it computes
each workspace's default map, funnel, paths, retention and customer index into the persisted
analytics cache (:mod:`wayline.web.cache`), which the API workers read — so a worker's first
request for a default page is served from the file, and later requests see the refreshed
result.

A pass computes only what is not fresh (new events since, or older than the cache's TTL); passes
run every ``interval`` seconds, so a store fed by live tracking is recomputed at most that often
here (the pages themselves refresh what a user looks at, see the cache).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from wayline.api.rest.analytics import run_funnel_cached, run_paths_cached, run_retention_cached
from wayline.api.rest.customers import search_customers
from wayline.api.rest.journey_map import journey_map_cached
from wayline.config import Settings
from wayline.errors import Busy
from wayline.storage.db import Database
from wayline.web.analytics_pages import (
    FUNNEL_FORM,
    PATHS_FORM,
    RETENTION_FORM,
    funnel_form_query,
    paths_form_query,
    retention_form_query,
)
from wayline.web.cache import Cached, ResultCache, store_fingerprint
from wayline.web.customer_index import customer_index
from wayline.web.customers import PAGE_SIZE as CUSTOMERS_PAGE_SIZE
from wayline.web.map import page_query

log = logging.getLogger(__name__)

#: Seconds between passes (each computes only what is stale).
DEFAULT_INTERVAL_SECONDS = 300.0


def default_views(workspace_id: str) -> list[tuple[str, Callable[[Any], Any]]]:
    """Each default page of a workspace, as (name, compute through an app state's cache); the
    map first: it is the landing page and the slowest to build."""
    return [
        ("map", lambda state: journey_map_cached(state, page_query(workspace_id, {}))),
        ("funnel", lambda st: run_funnel_cached(st, funnel_form_query(workspace_id, FUNNEL_FORM))),
        (
            "retention",
            lambda st: run_retention_cached(st, retention_form_query(workspace_id, RETENTION_FORM)),
        ),
        ("paths", lambda st: run_paths_cached(st, paths_form_query(workspace_id, PATHS_FORM))),
        ("customers", lambda state: _customer_list(state, workspace_id)),
    ]


def _customer_list(state: Any, workspace_id: str) -> Cached[Any]:
    """The customer index, and the first page of the customer list computed on it (which
    caches the total's count of profiles with events)."""
    index = customer_index(state, workspace_id)
    search_customers(state, workspace_id, None, limit=CUSTOMERS_PAGE_SIZE, offset=0)
    return index


@dataclass
class Prewarmer:
    """Keeps the persisted cache of every workspace's default views fresh.

    Args:
        db: the operational store (the list of workspaces).
        settings: where the analytics store and the cache live.
        interval: seconds between passes.
    """

    db: Database
    settings: Settings
    interval: float = DEFAULT_INTERVAL_SECONDS
    computed: int = field(default=0, init=False)
    """Views computed (not found fresh) so far: for tests and logs."""

    def __post_init__(self) -> None:
        # The same cache the workers persist to; computing in this thread (no background
        # refresh): this thread is the background.
        cache = ResultCache(
            persist_dir=Path(self.settings.home) / "cache" / "analytics", background=False
        )
        self._state = SimpleNamespace(db=self.db, settings=self.settings, analytics_cache=cache)

    def warm(self) -> int:
        """One pass over every workspace's default views; the number computed."""
        # The operational store's statistics first: the pages' queries are planned on them.
        # Only a plan gets worse without them: a busy store must not stop the prewarming.
        try:
            self.db.refresh_statistics()
        except Exception:
            log.warning("prewarm: refreshing the store's statistics failed", exc_info=True)
        computed = 0
        for workspace in self.db.list_workspaces():
            for name, compute in default_views(workspace.id):
                try:
                    state = compute(self._state).state
                except Busy:
                    log.info("prewarm: store busy; %s of %s left for later", name, workspace.id)
                    continue
                except Exception:
                    # A view that fails here fails on its page too, with the error shown there.
                    log.exception("prewarm: computing the %s of %s failed", name, workspace.id)
                    continue
                computed += state != "hit"
        self.computed += computed
        return computed

    def run_forever(self, stop: threading.Event, *, poll: float = 5.0) -> None:
        """Pass after pass until ``stop`` is set. While the store is empty it is looked at every
        ``poll`` seconds, so the first import's map is computed as soon as it lands."""
        last_pass = -float("inf")
        was_empty = True
        while not stop.is_set():
            empty = store_fingerprint(self.settings).startswith("-")
            due = time.monotonic() - last_pass >= self.interval
            if due or (was_empty and not empty):
                self.warm()
                last_pass = time.monotonic()
                was_empty = empty
            stop.wait(poll)
