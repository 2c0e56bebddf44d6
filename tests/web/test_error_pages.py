"""Errors in the dashboard are pages a person can read (with the way back); the APIs keep
answering JSON, whatever the client accepts."""

from __future__ import annotations

from dashboard_fixtures import Site

HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_a_browser_gets_error_pages(site: Site) -> None:
    browser = site.browser()
    unknown = browser.get("/no-such-page", headers=HTML)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("text/html")
    assert "Page not found" in unknown.text and 'href="/map"' in unknown.text
    missing = browser.get("/customers/nobody", headers=HTML)
    assert missing.status_code == 404 and "no customer &#39;nobody&#39;" in missing.text
    wrong_method = browser.delete("/map", headers=HTML)
    assert wrong_method.status_code == 405 and "text/html" in wrong_method.headers["content-type"]


def test_the_apis_answer_json(site: Site) -> None:
    c, h = site.client, site.a.headers
    api = c.get("/api/v1/customers/nobody", headers={**h, **HTML})
    assert api.status_code == 404 and api.json()["code"] == "not_found"
    route = c.get("/api/v1/no-such-route", headers={**h, **HTML})
    assert route.status_code == 404 and route.json() == {"detail": "Not Found"}
    plain = c.get("/no-such-page")  # a program, not a browser
    assert plain.status_code == 404 and plain.json() == {"detail": "Not Found"}
