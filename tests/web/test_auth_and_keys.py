"""Log-in, sessions, CSRF, and secret API keys scoped to one workspace."""

from __future__ import annotations

from fastapi.testclient import TestClient

from dashboard_fixtures import PASSWORD, Site
from wayline.storage.accounts import Accounts


def test_first_visit_creates_the_first_account(home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wayline.api import create_app
    from wayline.config import Settings
    from wayline.storage.db import Database

    settings = Settings(home=home)
    settings.ensure_home()
    with Database.open(settings) as db:
        client = TestClient(create_app(settings, database=db), follow_redirects=False)
        assert client.get("/").headers["location"] == "/setup"
        assert client.get("/login").headers["location"] == "/setup"
        short = client.post("/setup", data={"email": "me@shop.example", "password": "short"})
        assert short.status_code == 400 and "8 characters" in short.text
        r = client.post("/setup", data={"email": "Me@Shop.example", "password": PASSWORD})
        assert r.status_code == 303 and r.headers["location"] == "/map"
        # The page is gone once an account exists: nobody else can claim the store.
        again = client.post("/setup", data={"email": "x@evil.example", "password": PASSWORD})
        assert again.headers["location"] == "/login"
        assert Accounts(db).log_in("me@shop.example", PASSWORD)[1].workspace_id == "default"


def test_pages_need_a_session_and_come_back_after_log_in(site: Site) -> None:
    anonymous = TestClient(site.app, follow_redirects=False)
    r = anonymous.get("/logout-check-nonexistent")
    assert r.status_code == 404
    wrong = anonymous.post("/login", data={"email": site.a.email, "password": "nope-nope"})
    assert wrong.status_code == 401 and "wrong e-mail or password" in wrong.text
    ok = anonymous.post(
        "/login", data={"email": site.a.email, "password": PASSWORD, "next": "//evil.example/"}
    )
    assert ok.headers["location"] == "/map"  # no open redirect
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_log_out_needs_the_csrf_token(site: Site) -> None:
    browser = site.browser()
    token = browser.cookies.get("wayline_session")
    assert browser.post("/logout").status_code == 403
    assert Accounts(site.db).session(token) is not None
    r = browser.post("/logout", data={"csrf_token": site.csrf(browser)})
    assert r.status_code == 303
    assert Accounts(site.db).session(token) is None


def test_api_keys_name_one_workspace(site: Site) -> None:
    c = site.client
    assert c.get("/api/v1/api-keys").status_code == 401
    assert c.get("/api/v1/api-keys", headers={"Authorization": "Bearer nope"}).status_code == 401
    mine = c.get("/api/v1/api-keys", headers=site.a.headers).json()
    assert [k["name"] for k in mine["items"]] == ["alpha tests"]
    assert mine["total"] == 1 and mine["next_offset"] is None
    made = c.post("/api/v1/api-keys", json={"name": "reporting"}, headers=site.a.headers)
    assert made.status_code == 201
    new = made.json()
    assert new["key"].startswith("wl_sk_")
    # B cannot revoke A's key; A can, and the key stops working at once.
    other = c.delete(f"/api/v1/api-keys/{new['id']}", headers=site.b.headers)
    assert other.status_code == 404
    assert c.delete(f"/api/v1/api-keys/{new['id']}", headers=site.a.headers).status_code == 204
    revoked = c.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {new['key']}"})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]


def test_validation_errors_name_the_field(site: Site) -> None:
    r = site.client.post("/api/v1/api-keys", json={"name": ""}, headers=site.a.headers)
    assert r.status_code == 422
    assert r.json()["field"] == "name"
    r = site.client.get("/api/v1/api-keys?limit=0", headers=site.a.headers)
    assert r.status_code == 422 and r.json()["field"] == "limit"


def test_the_dashboard_session_reaches_the_api_with_csrf_on_writes(site: Site) -> None:
    browser = site.browser()
    assert browser.get("/api/v1/api-keys").status_code == 200
    assert browser.post("/api/v1/api-keys", json={"name": "x"}).status_code == 403
