"""The dashboard's data page: upload with progress, and the tracking snippet with the write key."""

from __future__ import annotations

import time

from test_rest_imports import events_csv

from dashboard_fixtures import Site


def _follow(site: Site, browser: object, location: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        html: str = browser.get(location).text  # type: ignore[attr-defined]
        if "Imported " in html or "Nothing was stored" in html:
            return html
        # Without scripts the page reloads itself while the job runs.
        assert '<meta http-equiv="refresh" content="2">' in html
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_upload_shows_progress_until_done(site: Site) -> None:
    browser = site.browser()
    page = browser.get("/data").text
    assert 'enctype="multipart/form-data"' in page and 'for="file"' in page
    assert "/static/data_import.js" in page
    token = site.csrf(browser, "/data")
    assert (
        browser.post("/data/imports", files={"file": ("o.csv", events_csv(20))}).status_code == 403
    )
    r = browser.post(
        "/data/imports",
        data={"csrf_token": token, "format": "auto"},
        files={"file": ("orders.csv", events_csv(20))},
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/data?job=")
    html = _follow(site, browser, r.headers["location"])
    assert "Imported 20 events from 20 rows" in html
    assert 'value="100.0"' in html  # the progress bar is full
    assert '<meta http-equiv="refresh"' not in html
    # The customers it brought are on the customers page.
    assert 'href="/customers/user-3"' in browser.get("/customers").text


def test_a_broken_file_reports_row_and_column(site: Site) -> None:
    browser = site.browser()
    token = site.csrf(browser, "/data")
    r = browser.post(
        "/data/imports",
        data={"csrf_token": token},
        files={"file": ("events.csv", events_csv(50, bad_row=30))},
    )
    html = _follow(site, browser, r.headers["location"])
    assert "Nothing was stored" in html and "row 30" in html and "timestamp" in html
    empty = browser.post("/data/imports", data={"csrf_token": token, "format": "csv"})
    assert empty.status_code == 400 and "choose a file" in empty.text


def test_snippet_names_this_workspace_write_key_and_server(site: Site) -> None:
    mine = site.browser().get("/data").text
    assert site.a.write_key in mine and site.b.write_key not in mine
    assert "apiHost: &#39;testserver/v1&#39;" in mine or "apiHost: 'testserver/v1'" in mine
    theirs = site.browser(site.b).get("/data").text
    assert site.b.write_key in theirs and site.a.write_key not in theirs


def test_a_job_of_another_workspace_is_not_shown(site: Site) -> None:
    a = site.browser()
    token = site.csrf(a, "/data")
    r = a.post(
        "/data/imports",
        data={"csrf_token": token},
        files={"file": ("secret-orders.csv", events_csv(5))},
    )
    _follow(site, a, r.headers["location"])
    b = site.browser(site.b)
    html = b.get(r.headers["location"]).text
    assert "secret-orders.csv" not in html
