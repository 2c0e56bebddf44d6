"""The dashboard's funnel, paths and retention pages: drawn for a workspace with data (with the
same numbers as the REST API), readable without data, and bad input shown on the form."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dashboard_fixtures import Site
from wayline.events.simulator import SimulatedStore
from wayline.storage.eventstore import EventStore
from wayline.web.analytics_pages import heat
from wayline.web.cache import ResultCache

STEPS = "Product Viewed,Product Added,Checkout Started,Order Completed"


def test_pages_need_a_log_in_and_render_without_data(site: Site) -> None:
    browser = site.browser()
    for path in ("/funnels", "/paths", "/retention"):
        assert site.client.get(path).headers["location"].startswith("/login")
        r = browser.get(path)
        assert r.status_code == 200, r.text
        assert "<form" in r.text and "<label" in r.text
        assert 'href="/data"' in r.text or "No paths" in r.text


def test_funnel_page_draws_the_same_numbers_as_the_api(site: Site, sample: SimulatedStore) -> None:
    site.load(sample)
    params = {"steps": STEPS, "breakdown": "device_type", "until": "2026-05-01"}
    api = site.client.get("/api/v1/funnels", params=params, headers=site.a.headers).json()
    html = site.browser().get("/funnels", params=params).text
    assert 'class="funnel-bars"' in html
    for step in api["steps"]:
        assert f"{step['users']:,} · {step['conversion']:.1%}" in html
    last = api["steps"][-1]
    assert f"{last['dropped']:,} dropped" in html
    assert "By device_type" in html
    for value in api["breakdown"]:
        assert f'<th scope="row">{value}</th>' in html


def test_paths_page_draws_a_sankey(site: Site, sample: SimulatedStore) -> None:
    site.load(sample)
    params = {"from": "Product Viewed", "steps": "4"}
    api = site.client.get("/api/v1/paths", params=params, headers=site.a.headers).json()
    html = site.browser().get("/paths", params=params).text
    assert '<svg class="sankey"' in html
    assert html.count("<path d=") == len(api["links"])
    assert f"{api['units']:,} customers" in html
    assert "Most common paths" in html


def test_retention_page_draws_a_heat_map(site: Site, sample: SimulatedStore) -> None:
    site.load(sample)
    params = {"period": "week", "cohort": "first_seen", "until": "2026-05-01"}
    api = site.client.get("/api/v1/retention", params=params, headers=site.a.headers).json()
    html = site.browser().get("/retention", params=params).text
    assert 'class="heatmap"' in html
    assert html.count('<tr><th scope="row">') == len(api["cohorts"]) + 0
    first = api["cohorts"][0]
    assert f'title="{first["retained"][0]:,} of {first["size"]:,}"' in html
    assert heat(1.0) in html  # period 0 of a first-seen cohort: everyone


def test_bad_input_is_shown_on_the_form(site: Site) -> None:
    browser = site.browser()
    for path, params, field in [
        ("/funnels", {"steps": "a,b", "window": "soon"}, "window"),
        ("/funnels", {"steps": "a,b", "order": "sideways"}, "order"),
        ("/paths", {"steps": "99"}, "steps"),
        ("/retention", {"period": "year"}, "period"),
        ("/retention", {"since": "last tuesday"}, "since"),
    ]:
        r = browser.get(path, params=params)
        assert r.status_code == 400, (path, params)
        assert 'class="error" role="alert"' in r.text and f"field &#39;{field}&#39;" in r.text


def test_heat_colours_darken_with_the_rate() -> None:
    assert heat(None) == ""
    assert "97%" in heat(0.0) and "42%" in heat(1.0) and "#fff" in heat(1.0)


# ---------------------------------------------------------------------------------------------
# The cache behind the pages


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_hits_refreshes_in_the_background_and_persists(tmp_path: Path) -> None:
    clock = Clock()
    calls: list[str] = []

    def compute(value: str) -> Callable[[], str]:
        def run() -> str:
            calls.append(value)
            return value

        return run

    cache = ResultCache(persist_dir=tmp_path, ttl=60, clock=clock)
    assert cache.get(("k",), "f1", compute("one")).state == "miss"
    hit = cache.get(("k",), "f1", compute("never"))
    assert (hit.value, hit.state) == ("one", "hit") and calls == ["one"]
    # New events: the old value at once, the new one computed behind it.
    stale = cache.get(("k",), "f2", compute("two"))
    assert (stale.value, stale.state) == ("one", "stale")
    cache.wait_idle()
    assert cache.get(("k",), "f2", compute("never")).value == "two"
    # Older than the TTL: the same.
    clock.now += 61
    assert cache.get(("k",), "f2", compute("three")).state == "stale"
    cache.wait_idle()
    assert cache.get(("k",), "f2", compute("never")).value == "three"
    # Another worker finds it on disk; a damaged file is rebuilt, not trusted.
    other = ResultCache(persist_dir=tmp_path, ttl=60, clock=clock)
    assert other.get(("k",), "f2", compute("never")).state == "hit"
    for f in tmp_path.iterdir():
        f.write_bytes(b"not a pickle")
    third = ResultCache(persist_dir=tmp_path, ttl=60, clock=clock)
    assert third.get(("k",), "f2", compute("four")).state == "miss"
    assert "never" not in calls


def test_new_events_reach_the_pages(site: Site, sample: SimulatedStore) -> None:
    site.load(sample)
    params = {"steps": STEPS}
    before = site.client.get("/api/v1/funnels", params=params, headers=site.a.headers).json()
    with EventStore(site.settings.resolved_analytics_path) as store:
        # The store changes (here: a month of product views is gone), as after an import.
        store.con.execute(
            "DELETE FROM events WHERE event = 'Product Viewed' AND timestamp >= '2026-04-01'"
        )
    site.app.state.analytics_cache.wait_idle()
    r = site.client.get("/api/v1/funnels", params=params, headers=site.a.headers).json()
    site.app.state.analytics_cache.wait_idle()
    after = site.client.get("/api/v1/funnels", params=params, headers=site.a.headers).json()
    assert r == before  # served at once while the new figures are computed
    assert 0 < after["steps"][0]["users"] < before["steps"][0]["users"]
