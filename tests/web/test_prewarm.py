"""The prewarmer: every workspace's default pages computed into the persisted cache before the
first visit, so a worker serves them without computing; an import into an empty store is
picked up at once."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from dashboard_fixtures import Site
from wayline.events.simulator import SimulatedStore
from wayline.web import cache
from wayline.web.prewarm import Prewarmer, default_views

PAGES = ("/map", "/funnels", "/paths", "/retention", "/customers")


def test_default_pages_are_served_from_the_prewarmed_cache(
    site: Site, sample: SimulatedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.load(sample)
    warmer = Prewarmer(site.db, site.settings)
    per_workspace = len(default_views(site.a.workspace_id))
    assert warmer.warm() == per_workspace * len(site.tenants)
    assert warmer.warm() == 0  # nothing changed: every view is fresh

    def no_computing(*_: object) -> None:
        raise AssertionError("a prewarmed page was computed again")

    monkeypatch.setattr(cache, "run_on_store", no_computing)
    for tenant in site.tenants:
        browser = site.browser(tenant)
        for page in PAGES:
            r = browser.get(page)
            assert r.status_code == 200, (page, r.text[:300])
    # The first workspace has the events: its map is drawn, not the empty-store notice.
    assert "No events yet" not in site.browser().get("/map").text


def test_a_busy_store_does_not_stop_the_prewarming(
    site: Site, sample: SimulatedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(site.db, "refresh_statistics", locked)
    site.load(sample)
    warmer = Prewarmer(site.db, site.settings)
    assert warmer.warm() == len(default_views(site.a.workspace_id)) * len(site.tenants)


def test_an_import_into_an_empty_store_is_warmed_at_once(
    site: Site, sample: SimulatedStore
) -> None:
    warmer = Prewarmer(site.db, site.settings, interval=3600)
    stop = threading.Event()
    thread = threading.Thread(target=warmer.run_forever, args=(stop,), kwargs={"poll": 0.05})
    thread.start()
    try:
        views = len(default_views(site.a.workspace_id)) * len(site.tenants)
        deadline = time.monotonic() + 30
        while warmer.computed < views and time.monotonic() < deadline:
            time.sleep(0.05)
        assert warmer.computed == views  # the empty store's (empty) views
        site.load(sample)
        deadline = time.monotonic() + 60
        while warmer.computed < 2 * views and time.monotonic() < deadline:
            time.sleep(0.05)
        assert warmer.computed == 2 * views  # recomputed once the events landed, not later
    finally:
        stop.set()
        thread.join()
    r = site.browser().get("/funnels")
    assert r.status_code == 200 and "Product Viewed" in r.text
