"""``/api/v1/journeys``: drafts, validation with the node at fault, publish/pause/resume/archive,
stats from a real runtime, YAML import/export — and one workspace never sees another's."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import insert

from dashboard_fixtures import Site
from wayline.api import create_app
from wayline.api.rest.journeys import aggregated_stats
from wayline.config import Settings
from wayline.journeys.runtime import JourneyCatalog, JourneyRuntime
from wayline.storage.accounts import Accounts
from wayline.storage.db import Database
from wayline.storage.models import CustomerProfile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Paris: no quiet hours


def cart(journey_id: str = "cart") -> dict[str, Any]:
    """Half the customers held out; the others get an e-mail, then a delay."""
    return {
        "id": journey_id,
        "name": "Cart",
        "trigger": {"event": "Checkout Started"},
        "goal": {"event": "Order Completed", "within": "3d"},
        "steps": [
            {"id": "split", "type": "split", "holdout": 50,
             "branches": [{"name": "treatment", "weight": 50, "next": "email"}]},
            {"id": "email", "type": "send", "channel": "email", "template": "welcome",
             "next": "pause"},
            {"id": "pause", "type": "delay", "duration": "1h"},
        ],
    }  # fmt: skip


def test_create_read_update_a_draft(site: Site) -> None:
    c, h = site.client, site.a.headers
    r = c.post("/api/v1/journeys", json=cart(), headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "draft" and body["valid"] and body["problems"] == []
    assert body["document"] == cart()
    assert c.post("/api/v1/journeys", json=cart(), headers=h).status_code == 409  # id taken
    edited = cart()
    edited["steps"][2]["duration"] = "2h"
    r = c.put("/api/v1/journeys/cart", json=edited, headers=h)
    assert r.status_code == 200 and r.json()["document"] == edited
    assert c.get("/api/v1/journeys/cart", headers=h).json()["document"] == edited
    # The document must be the journey the URL names.
    wrong = c.put("/api/v1/journeys/cart", json=cart("other"), headers=h)
    assert wrong.status_code == 400 and wrong.json()["field"] == "id"
    assert c.put("/api/v1/journeys/nope", json=cart("nope"), headers=h).status_code == 404


def test_bad_bodies_are_4xx_naming_what_is_wrong(site: Site) -> None:
    c, h = site.client, site.a.headers
    r = c.post(
        "/api/v1/journeys", content=b"{not json", headers={**h, "content-type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = c.post("/api/v1/journeys", json=[1, 2], headers=h)
    assert r.status_code == 400 and r.json()["field"] == "body"
    r = c.post("/api/v1/journeys", json={"name": "no id"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "id"
    r = c.post("/api/v1/journeys", json={"id": "../x"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "id"
    r = c.post(
        "/api/v1/journeys",
        content=b"id: [unclosed",
        headers={**h, "content-type": "application/yaml"},
    )
    assert r.status_code == 400 and "not valid YAML" in r.json()["message"]
    assert c.get("/api/v1/journeys", headers=h).json()["total"] == 0  # nothing half-written


def test_invalid_drafts_are_kept_and_problems_name_the_node(site: Site) -> None:
    c, h = site.client, site.a.headers
    doc = cart()
    doc["steps"][1]["next"] = "nowhere"
    doc["steps"][2]["duration"] = "soon"
    doc["goal"]["within"] = "forever"
    r = c.post("/api/v1/journeys", json=doc, headers=h)
    assert r.status_code == 201 and not r.json()["valid"]
    assert r.json()["document"] == doc  # work in progress is kept as written
    v = c.post("/api/v1/journeys/cart/validate", headers=h).json()
    assert not v["valid"]
    by_node = {(p["node"], p["field"]) for p in v["problems"]}
    assert ("pause", "duration") in by_node
    assert ("$goal", "goal.within") in by_node
    assert all(p["path"] and p["message"] for p in v["problems"])
    # Publishing is refused with every problem and where it is.
    r = c.post("/api/v1/journeys/cart/publish", headers=h)
    assert r.status_code == 409
    assert r.json()["field"] == r.json()["problems"][0]["path"]
    assert {p["node"] for p in r.json()["problems"]} >= {"pause", "$goal"}
    assert c.get("/api/v1/journeys/cart", headers=h).json()["status"] == "draft"
    # Graph problems (found once the shape is right) point at the step too.
    doc = cart()
    doc["steps"][1]["next"] = "nowhere"
    v = c.post("/api/v1/journeys/cart/validate", json=doc, headers=h).json()
    assert [(p["node"], p["message"]) for p in v["problems"]] == [
        ("email", "next goes to unknown step 'nowhere'"),
        ("pause", "unreachable: no step leads here"),
    ]
    doc["trigger"] = {}
    v = c.post("/api/v1/journeys/cart/validate", json=doc, headers=h).json()
    assert "$trigger" in {p["node"] for p in v["problems"]}


def test_publish_pause_resume_archive(site: Site) -> None:
    c, h = site.client, site.a.headers
    c.post("/api/v1/journeys", json=cart(), headers=h)
    assert c.post("/api/v1/journeys/cart/pause", headers=h).status_code == 409  # not live
    r = c.post("/api/v1/journeys/cart/publish", headers=h)
    assert r.status_code == 200 and r.json() == {
        "id": "cart", "status": "live", "live_version": 1, "created": True
    }  # fmt: skip
    # An edit is a new draft; the live version is untouched until it is published.
    edited = cart()
    edited["name"] = "Cart, v2"
    c.put("/api/v1/journeys/cart", json=edited, headers=h)
    got = c.get("/api/v1/journeys/cart", headers=h).json()
    assert got["status"] == "live" and got["live_version"] == 1 and got["has_draft"]
    assert c.post("/api/v1/journeys/cart/pause", headers=h).json()["status"] == "paused"
    resumed = c.post("/api/v1/journeys/cart/resume", headers=h).json()
    assert resumed["status"] == "live" and resumed["live_version"] == 1
    assert resumed["document"] == edited  # resuming kept the unpublished draft
    assert c.post("/api/v1/journeys/cart/resume", headers=h).status_code == 409
    r = c.post("/api/v1/journeys/cart/publish", headers=h).json()
    assert (r["live_version"], r["created"]) == (2, True)
    exported = c.get("/api/v1/journeys/cart/export.yaml?version=1", headers=h)
    assert yaml.safe_load(exported.text) == cart()  # version 1 is frozen as published
    assert c.delete("/api/v1/journeys/cart", headers=h).status_code == 204
    assert c.get("/api/v1/journeys/cart", headers=h).json()["status"] == "archived"
    assert c.delete("/api/v1/journeys/cart", headers=h).status_code == 409
    assert c.put("/api/v1/journeys/cart", json=cart(), headers=h).status_code == 409
    assert c.post("/api/v1/journeys/cart/publish", headers=h).status_code == 409


def test_yaml_import_export_round_trip(site: Site) -> None:
    c, h = site.client, site.a.headers
    yaml_type = {**h, "content-type": "application/yaml"}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        r = c.post("/api/v1/journeys/import", content=text.encode(), headers=yaml_type)
        assert r.status_code == 201, (path.name, r.text)
        assert r.json()["valid"], r.json()["problems"]
        journey_id = r.json()["id"]
        exported = c.get(f"/api/v1/journeys/{journey_id}/export.yaml", headers=h)
        assert exported.headers["content-type"].startswith("application/yaml")
        assert f'filename="{journey_id}.yaml"' in exported.headers["content-disposition"]
        assert yaml.safe_load(exported.text) == yaml.safe_load(text)
        assert exported.text.startswith(f"id: {journey_id}\nname:")  # written as people do
        # Exported text imports back to the same document (200: the journey exists).
        again = c.post("/api/v1/journeys/import", content=exported.content, headers=yaml_type)
        assert again.status_code == 200 and again.json()["document"] == r.json()["document"]
    # POST with a YAML body creates too.
    text = yaml.safe_dump(cart("from-yaml"))
    r = c.post("/api/v1/journeys", content=text.encode(), headers=yaml_type)
    assert r.status_code == 201 and r.json()["document"] == cart("from-yaml")


def test_list_is_paginated_with_headline_results(site: Site) -> None:
    c, h = site.client, site.a.headers
    for name in ("a", "b", "c"):
        c.post("/api/v1/journeys", json=cart(name), headers=h)
    c.post("/api/v1/journeys/b/publish", headers=h)
    page = c.get("/api/v1/journeys?limit=2", headers=h).json()
    assert [j["id"] for j in page["items"]] == ["a", "b"]
    assert page["total"] == 3 and page["next_offset"] == 2
    assert page["items"][1]["status"] == "live" and page["items"][1]["live_version"] == 1
    assert c.get("/api/v1/journeys?offset=2", headers=h).json()["items"][0]["id"] == "c"
    live = c.get("/api/v1/journeys?status=live", headers=h).json()
    assert [j["id"] for j in live["items"]] == ["b"]
    assert c.get("/api/v1/journeys?status=bogus", headers=h).status_code == 422


def _track(person: str, event: str, at: datetime) -> dict[str, Any]:
    return {"type": "track", "event": event, "userId": person, "timestamp": at.isoformat(),
            "properties": {}, "messageId": uuid.uuid4().hex}  # fmt: skip


def test_stats_per_step_per_branch_and_goal_from_the_runtime(site: Site) -> None:
    c, h, ws = site.client, site.a.headers, site.a.workspace_id
    c.post("/api/v1/journeys", json=cart(), headers=h)
    assert c.get("/api/v1/journeys/cart/stats", headers=h).status_code == 409  # not published
    assert c.post("/api/v1/journeys/cart/publish", headers=h).status_code == 200
    people = [f"p{i}" for i in range(34)]
    with site.db.write() as conn:
        conn.execute(
            insert(CustomerProfile),
            [{"workspace_id": ws, "person_id": p, "email": f"{p}@example.com",
              "consent": {"email": i < 30}, "traits": {}, "timezone": "Europe/Paris",
              "first_seen": T0, "last_seen": T0} for i, p in enumerate(people)],
        )  # fmt: skip
    now = [T0]
    runtime = JourneyRuntime(site.db, clock=lambda: now[0], idle_seconds=0.0)
    site.db.accept(ws, [_track(p, "Checkout Started", T0) for p in people], T0)
    runtime.drain()
    now[0] = T0 + timedelta(minutes=5)
    site.db.accept(ws, [_track(p, "Order Completed", now[0]) for p in people[:3]], now[0])
    runtime.drain()
    stats = c.get("/api/v1/journeys/cart/stats", headers=h).json()
    assert stats["entered"] == 34 and stats["converted"] == 3 and stats["goal"] == "Order Completed"
    branches = {b["name"]: b for b in stats["splits"]["split"]}
    assert set(branches) == {"holdout", "treatment"}
    treated = branches["treatment"]["customers"]
    assert treated + branches["holdout"]["customers"] == 34 and 0 < treated < 34
    assert sum(b["converted"] for b in branches.values()) == 3
    steps = {s["step_id"]: s for s in stats["steps"]}
    assert steps["split"]["entered"] == 34 and steps["split"]["completed"] == 34
    email = steps["email"]
    assert email["entered"] == treated and email["failed"] == 0
    assert email["sent"] + email["skipped"].get("no_consent", 0) == treated and email["sent"] > 0
    assert stats["sent_by_channel"] == {"email": email["sent"]}
    listed = c.get("/api/v1/journeys", headers=h).json()["items"][0]
    assert (listed["entered"], listed["converted"]) == (34, 3)
    assert listed["messages_sent"] == email["sent"]
    assert c.get("/api/v1/journeys/cart/stats?version=2", headers=h).status_code == 404
    # Past the delay and the goal window everyone has finished; a second version goes live.
    now[0] = T0 + timedelta(days=4)
    runtime.drain()
    edited = cart()
    edited["steps"][2]["duration"] = "2h"
    c.put("/api/v1/journeys/cart", json=edited, headers=h)
    assert c.post("/api/v1/journeys/cart/publish", headers=h).json()["live_version"] == 2
    stats = c.get("/api/v1/journeys/cart/stats", headers=h).json()
    assert stats["completed"] + stats["converted"] == 34 and stats["active"] == 0
    # Counted by the database, the numbers are exactly the catalog's (which reads every record).
    catalog = JourneyCatalog(site.db)
    for version in (None, 1, 2):
        journey = catalog.version(ws, "cart", version or 2)
        expected = catalog.stats(ws, "cart", version=version)
        assert aggregated_stats(site.db, ws, journey, version=version) == expected, version
    # Another workspace's key reads nothing of it.
    other = c.get("/api/v1/journeys/cart/stats", headers=site.b.headers)
    assert other.status_code == 404


def test_another_workspace_gets_404_everywhere(site: Site) -> None:
    c, a, b = site.client, site.a.headers, site.b.headers
    c.post("/api/v1/journeys", json=cart(), headers=a)
    c.post("/api/v1/journeys/cart/publish", headers=a)
    assert c.get("/api/v1/journeys", headers=b).json()["total"] == 0
    for method, path in [
        ("GET", "/api/v1/journeys/cart"),
        ("POST", "/api/v1/journeys/cart/validate"),
        ("POST", "/api/v1/journeys/cart/publish"),
        ("POST", "/api/v1/journeys/cart/pause"),
        ("POST", "/api/v1/journeys/cart/resume"),
        ("DELETE", "/api/v1/journeys/cart"),
        ("GET", "/api/v1/journeys/cart/stats"),
        ("GET", "/api/v1/journeys/cart/export.yaml"),
    ]:
        assert c.request(method, path, headers=b).status_code == 404, (method, path)
    assert c.put("/api/v1/journeys/cart", json=cart(), headers=b).status_code == 404
    # The same id in workspace b is its own journey; a's is untouched.
    mine = copy.deepcopy(cart())
    mine["name"] = "B's cart"
    assert c.post("/api/v1/journeys", json=mine, headers=b).status_code == 201
    assert c.get("/api/v1/journeys/cart", headers=a).json()["name"] == "Cart"
    assert c.get("/api/v1/journeys/cart", headers=a).json()["status"] == "live"
    assert c.get("/api/v1/journeys", headers=site.client.headers).status_code == 401


def test_the_dashboard_session_needs_csrf_to_write(site: Site) -> None:
    browser = site.browser()
    assert browser.post("/api/v1/journeys", json=cart()).status_code == 403
    token = site.csrf(browser)
    r = browser.post("/api/v1/journeys", json=cart(), headers={"X-CSRF-Token": token})
    assert r.status_code == 201
    assert browser.get("/api/v1/journeys/cart").json()["id"] == "cart"


@pytest.mark.postgres
def test_drafts_publish_and_headline_counts_on_postgresql(postgres_url: str, home: Path) -> None:
    settings = Settings(home=home)
    settings.ensure_home()
    db = Database(postgres_url)
    try:
        workspace_id, _, _ = db.ensure_default_workspace()
        other, _ = db.create_workspace("other")
        accounts = Accounts(db)
        h = {"Authorization": f"Bearer {accounts.create_api_key(workspace_id, 't')[1]}"}
        b = {"Authorization": f"Bearer {accounts.create_api_key(other, 't')[1]}"}
        with TestClient(create_app(settings, database=db)) as c:
            broken = cart()
            broken["steps"][2]["duration"] = "soon"
            assert c.post("/api/v1/journeys", json=broken, headers=h).status_code == 201
            r = c.post("/api/v1/journeys/cart/publish", headers=h)
            assert r.status_code == 409 and r.json()["problems"][0]["node"] == "pause"
            assert c.put("/api/v1/journeys/cart", json=cart(), headers=h).json()["valid"]
            assert c.post("/api/v1/journeys/cart/publish", headers=h).json()["live_version"] == 1
            listed = c.get("/api/v1/journeys", headers=h).json()["items"]
            assert [(j["id"], j["status"], j["messages_sent"]) for j in listed] == [
                ("cart", "live", 0)
            ]
            assert c.get("/api/v1/journeys/cart/stats", headers=h).json()["entered"] == 0
            assert c.get("/api/v1/journeys/cart", headers=b).status_code == 404
    finally:
        db.close()
