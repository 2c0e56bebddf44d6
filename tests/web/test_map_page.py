"""The dashboard's journey map page: lanes, pain points and solutions for a workspace with data,
a clear page without; the switcher and comparison; downloads; and "Create journey" making a
draft in the right workspace (never without the CSRF token)."""

from __future__ import annotations

import pytest

from dashboard_fixtures import Site
from wayline.events.simulator import SimulatedStore
from wayline.journeys.entry import JourneyStatus
from wayline.journeys.runtime.catalog import JourneyCatalog


def test_the_map_needs_a_log_in(site: Site) -> None:
    r = site.client.get("/map")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/map")


def test_without_events_the_map_says_so(site: Site) -> None:
    r = site.browser().get("/map")
    assert r.status_code == 200
    assert "No events yet" in r.text and 'href="/data"' in r.text


def test_the_map_shows_lanes_pain_points_and_solutions(site: Site, sample: SimulatedStore) -> None:
    site.load(sample)
    browser = site.browser()
    r = browser.get("/map", params={"compare": "previous", "since": "2026-04-01"})
    assert r.status_code == 200, r.text
    html = r.text
    for stage in ("Awareness", "Consideration", "Decision", "Retention"):
        assert stage in html
    for lane in ("What they do", "Touchpoints", "Drop-off", "KPIs", "Feelings", "Pain points"):
        assert f'class="lane">{lane}<' in html
    # The previous period has the same length and ends where this one starts.
    assert "2026-04-01 → 2026-04-30" in html
    assert "compared with 2026-03-02 → 2026-04-01" in html
    assert 'class="delta ' in html  # changes against it
    assert "Money at stake" in html and "Create journey" in html
    assert html.count('action="/map/solutions/') >= 1
    assert "<svg" in html  # funnel and Sankey drawn inline

    side = browser.get("/map", params={"compare": "device", "values": "mobile,desktop"})
    assert "Side by side" in side.text and "mobile" in side.text and "desktop" in side.text

    mobile = browser.get("/map", params={"device": "mobile"})
    assert mobile.status_code == 200
    assert 'name="device" list="m-devices" value="mobile"' in mobile.text  # the switcher keeps it
    assert '<h2 id="view-1">device: mobile' in mobile.text
    assert '<h2 id="view-1">All customers' in html

    bad = browser.get("/map", params={"compare": "weather"})
    assert bad.status_code == 400 and "compare" in bad.text


def test_downloads_have_the_right_types(
    site: Site, sample: SimulatedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.load(sample)
    browser = site.browser()
    csv = browser.get("/map/download.csv", params={"device": "mobile"})
    assert csv.status_code == 200 and csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert "device_type=mobile" in csv.text or "mobile" in csv.text
    html = browser.get("/map/download.html")
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.headers["content-disposition"].startswith("attachment;")
    assert browser.get("/map/download.gif").status_code == 404
    monkeypatch.setenv("WAYLINE_CHROMIUM", "/nonexistent/chromium")
    missing = browser.get("/map/download.pdf")
    assert missing.status_code == 503 and "Chromium" in missing.json()["message"]


def test_a_real_png_and_pdf_when_chromium_is_here(site: Site, sample: SimulatedStore) -> None:
    from wayline.journeymap.render.browser import find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium on this machine")
    site.load(sample)
    browser = site.browser()
    png = browser.get("/map/download.png", params={"since": "2026-04-01"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    pdf = browser.get("/map/download.pdf", params={"since": "2026-04-01"})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_create_journey_makes_a_draft_in_the_right_workspace(site: Site) -> None:
    browser = site.browser(site.b)
    url = "/map/solutions/abandoned_cart_follow_up/journey"
    refused = browser.post(url)
    assert refused.status_code == 403
    catalog = JourneyCatalog(site.db)
    assert catalog.summaries(site.b.workspace_id) == []
    r = browser.post(url, data={"csrf_token": site.csrf(browser)})
    assert r.status_code == 303 and r.headers["location"] == "/journeys/abandoned-cart-recovery"
    (made,) = catalog.summaries(site.b.workspace_id)
    assert made.journey_id == "abandoned-cart-recovery"
    assert made.status == JourneyStatus.DRAFT and made.has_draft
    assert catalog.summaries(site.a.workspace_id) == []
    # Asked again, it opens the same journey and keeps its draft (no copy, no overwrite).
    again = browser.post(url, headers={"X-CSRF-Token": site.csrf(browser)})
    assert again.headers["location"] == "/journeys/abandoned-cart-recovery"
    assert len(catalog.summaries(site.b.workspace_id)) == 1
    unknown = browser.post("/map/solutions/nope/journey", data={"csrf_token": site.csrf(browser)})
    assert unknown.status_code == 404
    manual = browser.post(
        "/map/solutions/simplify_checkout/journey", data={"csrf_token": site.csrf(browser)}
    )
    assert manual.status_code == 400 and "not a journey" in manual.json()["message"]
