"""``/api/v1/customers`` and ``/api/v1/messages``: search, profile, timeline, consent — one
workspace's customers only; on SQLite, and on PostgreSQL when one is reachable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from test_rest_imports import events_csv, upload, wait_for

from dashboard_fixtures import Site
from wayline.api import create_app
from wayline.config import Settings
from wayline.events.importers import import_file
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore
from wayline.storage.journey_models import OutboxRow, StepRecordRow
from wayline.storage.models import CustomerProfile

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def seed(site: Site, tmp_path: Path) -> None:
    """Workspace a: Ann (profile + events + two messages), Bob (events only), Cy (profile only).
    Workspace b: its own Ann-like customer with the same person id."""
    csv = tmp_path / "events.csv"
    csv.write_text(
        "user_id,event,timestamp\n"
        "ann,Product Viewed,2024-05-01T10:00:00Z\n"
        "ann,Checkout Started,2024-05-01T10:05:00Z\n"
        "bob,Product Viewed,2024-05-02T09:00:00Z\n",
        encoding="utf-8",
    )
    other = tmp_path / "other.csv"
    other.write_text("user_id,event,timestamp\nann,Order Completed,2024-05-03T10:00:00Z\n")
    with EventStore(site.settings.resolved_analytics_path) as store:
        import_file(store, csv, now=T0, workspace_id=site.a.workspace_id)
        import_file(store, other, now=T0, workspace_id=site.b.workspace_id)
    with site.db.write() as conn:
        for ws, person, email, first in (
            (site.a.workspace_id, "ann", "ann@shop.example", "Ann"),
            (site.a.workspace_id, "cy", "cy@shop.example", "Cyrus"),
            (site.b.workspace_id, "ann", "ann@other.example", "Anna"),
        ):
            conn.execute(
                insert(CustomerProfile).values(
                    workspace_id=ws,
                    person_id=person,
                    email=email,
                    first_name=first,
                    last_name="Example",
                    timezone="Europe/Paris",
                    consent={"email": True},
                    traits={"plan": "gold"},
                    first_seen=T0 - timedelta(days=3),
                    last_seen=T0 - timedelta(days=1),
                )
            )
        for i, (status, kind, outcome) in enumerate(
            (("sent", "sent", "msg-1"), ("skipped", "send_skipped", "no_consent"))
        ):
            common = {
                "workspace_id": site.a.workspace_id,
                "instance_id": f"inst-{i}",
                "journey_id": "cart",
                "version": 1,
                "person_id": "ann",
            }
            conn.execute(
                insert(OutboxRow).values(
                    **common,
                    idempotency_key=f"key-{i}",
                    kind="send",
                    channel="email" if i == 0 else "sms",
                    step_id="remind",
                    payload='{"template": "abandoned_cart"}',
                    status=status,
                    due_at=T0 + timedelta(minutes=10 + i),
                    attempts=1,
                    outcome=outcome,
                    created_at=T0 + timedelta(minutes=10 + i),
                    done_at=T0 + timedelta(minutes=11 + i),
                )
            )
            conn.execute(
                insert(StepRecordRow).values(
                    **common,
                    kind=kind,
                    step_id="remind",
                    step_type="send",
                    outcome=outcome,
                    at=T0 + timedelta(minutes=11 + i),
                )
            )


@pytest.fixture
def seeded(site: Site, tmp_path: Path) -> Site:
    seed(site, tmp_path)
    return site


def test_search_finds_profiles_and_event_only_customers(seeded: Site) -> None:
    c, h = seeded.client, seeded.a.headers
    everyone = c.get("/api/v1/customers", headers=h).json()
    assert everyone["total"] == 3
    assert {x["person_id"] for x in everyone["items"]} == {"ann", "bob", "cy"}
    # Most recently seen first: bob (May 2), ann (May 1), cy (profile only, Apr 30).
    assert [x["person_id"] for x in everyone["items"]] == ["bob", "ann", "cy"]
    by_email = c.get("/api/v1/customers", params={"q": "ann@shop"}, headers=h).json()
    assert [x["person_id"] for x in by_email["items"]] == ["ann"]
    assert by_email["items"][0]["events"] == 2
    by_name = c.get("/api/v1/customers", params={"q": "cyrus ex"}, headers=h).json()
    assert [x["person_id"] for x in by_name["items"]] == ["cy"]
    by_id = c.get("/api/v1/customers", params={"q": "bo"}, headers=h).json()
    assert [x["person_id"] for x in by_id["items"]] == ["bob"]
    assert c.get("/api/v1/customers", params={"q": "%"}, headers=h).json()["total"] == 0
    page = c.get("/api/v1/customers", params={"limit": 2, "offset": 2}, headers=h).json()
    assert [x["person_id"] for x in page["items"]] == ["cy"] and page["next_offset"] is None


def test_profile_and_timeline(seeded: Site) -> None:
    c, h = seeded.client, seeded.a.headers
    ann = c.get("/api/v1/customers/ann", headers=h).json()
    assert ann["email"] == "ann@shop.example" and ann["timezone"] == "Europe/Paris"
    assert ann["consent"] == {"email": True} and ann["traits"] == {"plan": "gold"}
    assert ann["events"] == 2 and ann["last_seen"].startswith("2024-05-01T10:05")
    bob = c.get("/api/v1/customers/bob", headers=h).json()
    assert bob["has_profile"] is False and bob["events"] == 1
    timeline = c.get("/api/v1/customers/ann/timeline", headers=h).json()
    assert timeline["total"] == 4
    kinds = [
        (i["kind"], (i["event"] or {}).get("event") or i["message"]["status"])
        for i in timeline["items"]
    ]
    assert kinds == [
        ("message", "skipped"),
        ("message", "sent"),
        ("event", "Checkout Started"),
        ("event", "Product Viewed"),
    ]
    sent = timeline["items"][1]["message"]
    assert sent["template"] == "abandoned_cart" and sent["channel"] == "email"
    assert [s["status"] for s in sent["history"]] == ["queued", "sent"]
    skipped = timeline["items"][0]["message"]
    assert skipped["history"][-1] == {
        "status": "skipped",
        "at": skipped["history"][-1]["at"],
        "detail": "no_consent",
    }
    second = c.get("/api/v1/customers/ann/timeline?limit=2&offset=2", headers=h).json()
    assert [i["event"]["event"] for i in second["items"]] == ["Checkout Started", "Product Viewed"]


def test_messages_filter(seeded: Site) -> None:
    c, h = seeded.client, seeded.a.headers
    everything = c.get("/api/v1/messages", headers=h).json()
    assert everything["total"] == 2
    assert [
        m["status"] for m in c.get("/api/v1/messages?status=sent", headers=h).json()["items"]
    ] == ["sent"]
    assert c.get("/api/v1/messages?channel=sms", headers=h).json()["total"] == 1
    assert c.get("/api/v1/messages?customer=bob", headers=h).json()["total"] == 0
    assert c.get("/api/v1/messages?journey=cart&step=remind", headers=h).json()["total"] == 2
    r = c.get("/api/v1/messages?status=lost", headers=h)
    assert r.status_code == 422 and r.json()["field"] == "status"
    assert c.get("/api/v1/messages", headers=seeded.b.headers).json()["total"] == 0


def test_consent_patch(seeded: Site) -> None:
    c, h = seeded.client, seeded.a.headers
    r = c.patch("/api/v1/customers/ann/consent", json={"sms": True, "email": None}, headers=h)
    assert r.status_code == 200 and r.json()["consent"] == {"sms": True}
    with seeded.db.read() as conn:
        stored = conn.execute(
            select(CustomerProfile.consent).where(
                CustomerProfile.workspace_id == seeded.a.workspace_id,
                CustomerProfile.person_id == "ann",
            )
        ).scalar_one()
    assert stored == {"sms": True}
    # A customer known only from events gets a profile holding the consent.
    r = c.patch("/api/v1/customers/bob/consent", json={"whatsapp": False}, headers=h)
    assert r.status_code == 200 and r.json()["has_profile"] is True
    assert r.json()["consent"] == {"whatsapp": False}
    bad = c.patch("/api/v1/customers/ann/consent", json={"fax": True}, headers=h)
    assert bad.status_code == 422 and bad.json()["field"] == "fax"
    bad = c.patch("/api/v1/customers/ann/consent", json={"sms": "maybe"}, headers=h)
    assert bad.status_code == 422 and bad.json()["field"] == "sms"
    assert (
        c.patch("/api/v1/customers/nobody/consent", json={"sms": True}, headers=h).status_code
        == 404
    )


def test_another_workspace_sees_its_own_customer_or_nothing(seeded: Site) -> None:
    c, hb = seeded.client, seeded.b.headers
    theirs = c.get("/api/v1/customers/ann", headers=hb).json()
    assert theirs["email"] == "ann@other.example" and theirs["events"] == 1
    assert c.get("/api/v1/customers/bob", headers=hb).status_code == 404
    assert c.get("/api/v1/customers/cy/timeline", headers=hb).status_code == 404
    timeline = c.get("/api/v1/customers/ann/timeline", headers=hb).json()
    assert [i["event"]["event"] for i in timeline["items"]] == ["Order Completed"]
    assert c.get("/api/v1/customers?q=shop.example", headers=hb).json()["total"] == 0
    c.patch("/api/v1/customers/ann/consent", json={"email": False}, headers=hb)
    assert c.get("/api/v1/customers/ann", headers=seeded.a.headers).json()["consent"] == {
        "email": True
    }
    assert c.get("/api/v1/customers").status_code == 401


def test_no_events_yet(site: Site) -> None:
    assert site.client.get("/api/v1/customers", headers=site.a.headers).json()["total"] == 0
    assert site.client.get("/api/v1/customers/x", headers=site.a.headers).status_code == 404


@pytest.fixture
def pg_site(home: Path, postgres_url: str) -> Iterator[Site]:
    settings = Settings(home=home, database_url=postgres_url)
    settings.ensure_home()
    db = Database.open(settings)
    app = create_app(settings, database=db)
    with TestClient(app, follow_redirects=False) as client:
        s = Site(settings, db, app, client)
        s.add_tenant("alpha")
        s.add_tenant("beta")
        yield s
    db.close()


def test_the_routes_on_postgres(pg_site: Site, tmp_path: Path) -> None:
    site = pg_site
    seed(site, tmp_path)
    c, h = site.client, site.a.headers
    assert [
        x["person_id"] for x in c.get("/api/v1/customers?q=CYRUS", headers=h).json()["items"]
    ] == ["cy"]
    assert c.get("/api/v1/customers?q=_", headers=h).json()["total"] == 0
    r = c.patch("/api/v1/customers/bob/consent", json={"sms": True}, headers=h)
    assert r.status_code == 200 and r.json()["consent"] == {"sms": True}
    assert c.get("/api/v1/messages?status=skipped", headers=h).json()["total"] == 1
    assert c.get("/api/v1/customers/ann/timeline", headers=h).json()["total"] == 4
    body = {"quiet_hours": {"start": "22:00", "end": "06:00"}, "frequency_cap": None}
    assert c.put("/api/v1/settings/sending", json=body, headers=h).status_code == 200
    assert c.put("/api/v1/settings/sending", json=body, headers=h).json()["frequency_cap"] is None
    job = upload(c, site.a, "more.csv", events_csv(12))
    assert wait_for(c, site.a, job["id"])["events_stored"] == 12
