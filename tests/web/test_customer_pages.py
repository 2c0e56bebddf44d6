"""The dashboard's customer pages: search, profile, timeline, consent form — own workspace only."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from test_rest_customers import seed

from dashboard_fixtures import Site
from wayline.storage.models import CustomerProfile


def test_search_and_profile(site: Site, tmp_path: Path) -> None:
    seed(site, tmp_path)
    browser = site.browser()
    listing = browser.get("/customers")
    assert listing.status_code == 200
    assert 'href="/customers/ann"' in listing.text and 'href="/customers/bob"' in listing.text
    found = browser.get("/customers", params={"q": "cyrus"}).text
    assert 'href="/customers/cy"' in found and 'href="/customers/ann"' not in found
    assert "1 customer matching" in found
    ann = browser.get("/customers/ann").text
    assert "ann@shop.example" in ann and "Europe/Paris" in ann
    assert "Checkout Started" in ann and "abandoned_cart" in ann and "no_consent" in ann
    # Newest first: the skipped SMS (10:11) before the sent e-mail (10:10) before the events.
    assert ann.index("customers-status-skipped") < ann.index("customers-status-sent")
    assert ann.index("customers-status-sent") < ann.index("Checkout Started")
    assert 'id="consent-email"' in ann and 'for="consent-email"' in ann


def test_consent_form_needs_csrf_and_saves(site: Site, tmp_path: Path) -> None:
    seed(site, tmp_path)
    browser = site.browser()
    refused = browser.post("/customers/ann/consent", data={"email": "no"})
    assert refused.status_code == 403
    token = site.csrf(browser, "/customers/ann")
    r = browser.post(
        "/customers/ann/consent",
        data={"csrf_token": token, "email": "no", "sms": "yes", "whatsapp": "unknown"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/customers/ann?saved=true"
    with site.db.read() as conn:
        consent = conn.execute(
            select(CustomerProfile.consent).where(
                CustomerProfile.workspace_id == site.a.workspace_id,
                CustomerProfile.person_id == "ann",
            )
        ).scalar_one()
    assert consent == {"email": False, "sms": True}
    assert "Consent saved" in browser.get(r.headers["location"]).text


def test_another_workspace_sees_none_of_it(site: Site, tmp_path: Path) -> None:
    seed(site, tmp_path)
    other = site.browser(site.b)
    assert other.get("/customers/bob").status_code == 404
    assert 'href="/customers/bob"' not in other.get("/customers").text
    theirs = other.get("/customers/ann").text
    assert "ann@other.example" in theirs and "ann@shop.example" not in theirs
    assert "abandoned_cart" not in theirs
    token = site.csrf(other, "/customers/ann")
    other.post("/customers/cy/consent", data={"csrf_token": token, "email": "no"})
    with site.db.read() as conn:
        rows = conn.execute(
            select(CustomerProfile.workspace_id, CustomerProfile.consent).where(
                CustomerProfile.person_id == "cy"
            )
        ).all()
    assert rows == [(site.a.workspace_id, {"email": True})]


def test_pages_need_a_login(site: Site) -> None:
    assert site.client.get("/customers").status_code == 303
    assert site.client.get("/customers/ann").headers["location"].startswith("/login")
