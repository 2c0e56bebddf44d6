"""The REST API's analytics (funnels, drop-offs, paths, retention, lifecycle, journey map) on a
simulated store: the same answers as the CLI and the core functions, per workspace, empty but
well-formed without events, and a 4xx naming the parameter for bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from dashboard_fixtures import Site
from wayline.analytics.backend import DuckDBBackend
from wayline.analytics.customer_value import OrdersQuery, repeat_purchase, rfm
from wayline.analytics.funnels import FunnelQuery, dropped_persons, parse_steps, run_funnel
from wayline.analytics.lifecycle import LifecycleQuery, lifecycle
from wayline.analytics.retention import RetentionQuery, retention
from wayline.cli import _register
from wayline.cli import app as cli_app
from wayline.events.simulator import SimulatedStore
from wayline.journeymap.build import MapQuery, build_map
from wayline.journeymap.findings import find_pain_points
from wayline.journeymap.model import to_json
from wayline.journeymap.stages import default_mapping
from wayline.storage.eventstore import EventStore

UNTIL = "2026-05-01"
_register()  # the commands register themselves when their modules are imported

STEPS = "Product Viewed,Product Added,Checkout Started,Order Completed"


def core(site: Site) -> EventStore:
    return EventStore(site.settings.resolved_analytics_path, read_only=True)


def cli_json(args: list[str]) -> Any:
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_funnel_and_paths_answer_what_the_cli_answers(site: Site, sample: SimulatedStore) -> None:
    site.load(sample)
    c, h = site.client, site.a.headers
    params = {"steps": STEPS, "window": "7d", "breakdown": "device_type", "until": UNTIL}
    r = c.get("/api/v1/funnels", params=params, headers=h)
    assert r.status_code == 200, r.text
    cli = cli_json(
        [
            "funnel",
            "--steps",
            STEPS,
            "--window",
            "7d",
            "--breakdown",
            "device_type",
            "--json",
            "--until",
            UNTIL,
        ]
    )
    assert r.json() == cli
    assert cli["steps"][0]["users"] > cli["steps"][-1]["users"] > 0
    assert set(cli["breakdown"]) >= {"mobile", "desktop"}

    r = c.get(
        "/api/v1/paths",
        params={"from": "Product Viewed", "steps": 4, "top": 5, "until": UNTIL},
        headers=h,
    )
    assert r.status_code == 200, r.text
    cli = cli_json(
        [
            "paths",
            "--from",
            "Product Viewed",
            "--steps",
            "4",
            "--top",
            "5",
            "--until",
            UNTIL,
            "--json",
        ]
    )
    assert r.json() == cli
    assert cli["links"] and cli["nodes"] and cli["units"] > 0


def test_retention_lifecycle_dropoffs_and_map_equal_the_core(
    site: Site, sample: SimulatedStore
) -> None:
    site.load(sample)
    c, h = site.client, site.a.headers
    until = datetime.fromisoformat(UNTIL).replace(tzinfo=UTC)
    now = datetime.now(UTC)
    with core(site) as store:
        b = DuckDBBackend(store.con)
        want_retention = retention(
            b, RetentionQuery(period="week", cohort="first_seen", until=until), now=now
        ).to_dict()
        want_lifecycle = lifecycle(b, LifecycleQuery(period="week", until=until), now=now).to_dict()
        funnel = FunnelQuery(steps=parse_steps(STEPS), until=until)
        want_dropped = sorted(dropped_persons(b, funnel, 4))
        want_funnel = run_funnel(b, funnel).to_dict()
        want_map = to_json(
            build_map(
                b,
                MapQuery(until=until, compare_previous=True),
                default_mapping(),
                now=now,
                find_pain_points=find_pain_points,
            )
        )

    got = c.get(
        "/api/v1/retention",
        params={"period": "week", "cohort": "first_seen", "until": UNTIL},
        headers=h,
    ).json()
    assert got.pop("now") and want_retention.pop("now")
    assert got == want_retention and len(got["cohorts"]) >= 7

    got = c.get("/api/v1/lifecycle", params={"period": "week", "until": UNTIL}, headers=h).json()
    assert got == want_lifecycle and got["periods"]

    # Drop-offs at step 4 = reached checkout, did not order; paginated in id order.
    assert want_funnel["steps"][3]["dropped"] == len(want_dropped) > 3
    params = {"steps": STEPS, "step": 4, "until": UNTIL, "limit": 3}
    first = c.get("/api/v1/funnels/dropoffs", params=params, headers=h).json()
    assert first["total"] == len(want_dropped) and first["next_offset"] == 3
    rest = c.get(
        "/api/v1/funnels/dropoffs", params={**params, "offset": 3, "limit": 500}, headers=h
    ).json()
    ids = [x["person_id"] for x in first["items"] + rest["items"]]
    assert ids == want_dropped and rest["next_offset"] is None

    got = c.get(
        "/api/v1/journey-map", params={"until": UNTIL, "compare": "previous"}, headers=h
    ).json()
    assert got.pop("generated_at") and want_map.pop("generated_at")
    assert got == want_map
    stages = [s["stage"] for s in got["views"][0]["stages"]]
    assert stages[:4] == ["awareness", "consideration", "decision", "retention"]
    assert got["views"][0]["pain_points"], "the simulated problems show as pain points"
    assert "previous" in got["views"][0]["persons"]


def test_side_by_side_and_segment_filters(site: Site, sample: SimulatedStore) -> None:
    site.load(sample)
    c, h = site.client, site.a.headers
    two = c.get(
        "/api/v1/journey-map",
        params={"compare": "device", "values": "mobile,desktop", "pain_points": False},
        headers=h,
    ).json()
    assert [v["segment"] for v in two["views"]] == [
        {"device_type": "mobile"},
        {"device_type": "desktop"},
    ]
    mobile = c.get(
        "/api/v1/journey-map", params={"device": "mobile", "pain_points": False}, headers=h
    ).json()
    assert mobile["views"][0]["persons"] == two["views"][0]["persons"]


def test_a_workspace_without_events_gets_empty_results(site: Site, sample: SimulatedStore) -> None:
    c = site.client
    # No analytics store at all yet…
    assert not site.settings.resolved_analytics_path.exists()
    r = c.get("/api/v1/funnels", params={"steps": "a,b"}, headers=site.a.headers)
    assert r.status_code == 200 and [s["users"] for s in r.json()["steps"]] == [0, 0]
    m = c.get("/api/v1/journey-map", headers=site.a.headers).json()
    assert m["views"] == [] and "No events yet" in m["pain_points_note"]
    # …and a workspace without events in a store that has another's.
    site.load(sample)
    h = site.b.headers
    assert c.get("/api/v1/journey-map", headers=h).json()["views"] == []
    funnel = c.get("/api/v1/funnels", params={"steps": STEPS}, headers=h).json()
    assert [s["users"] for s in funnel["steps"]] == [0, 0, 0, 0]
    assert c.get("/api/v1/paths", headers=h).json()["nodes"] == []
    assert c.get("/api/v1/retention", headers=h).json()["cohorts"] == []
    assert c.get("/api/v1/lifecycle", headers=h).json()["periods"] == []
    drops = c.get("/api/v1/funnels/dropoffs", params={"steps": "a,b", "step": 2}, headers=h)
    assert drops.json()["total"] == 0
    # The other workspace's key sees its own data.
    assert c.get("/api/v1/journey-map", headers=site.a.headers).json()["views"]


def test_customer_value_equals_the_core(site: Site, sample: SimulatedStore) -> None:
    site.load(sample)
    c, h = site.client, site.a.headers
    until = datetime.fromisoformat(UNTIL).replace(tzinfo=UTC)
    with core(site) as store:
        b = DuckDBBackend(store.con)
        want_repeat = repeat_purchase(b, OrdersQuery(until=until)).to_dict()
        want = rfm(b, OrdersQuery(until=until), now=datetime.now(UTC)).to_dict()

    got = c.get("/api/v1/customer-value", params={"until": UNTIL, "customers": 5}, headers=h)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["repeat_purchase"] == want_repeat and want_repeat["repeat_customers"] > 0
    assert body["rfm"]["segments"] == want["segments"] and len(want["segments"]) > 2
    by_revenue = sorted(want["customers"], key=lambda x: (-float(x["monetary"]), x["person_id"]))
    assert body["rfm"]["customers"] == by_revenue[:5]

    # One segment's top customers, all of them when fewer than asked.
    name, size = want["segments"][-1]["name"], want["segments"][-1]["customers"]
    one = c.get(
        "/api/v1/customer-value",
        params={"until": UNTIL, "customers": 1000, "segment": name},
        headers=h,
    ).json()
    assert len(one["rfm"]["customers"]) == size
    assert {x["segment"] for x in one["rfm"]["customers"]} == {name}
    # No list unless asked; no orders, no customers.
    assert c.get("/api/v1/customer-value", headers=h).json()["rfm"]["customers"] == []
    empty = c.get("/api/v1/customer-value", headers=site.b.headers).json()
    assert empty["repeat_purchase"]["customers"] == 0 and empty["rfm"]["segments"] == []


BAD_PARAMETERS: list[tuple[str, dict[str, Any], int, str]] = [
    ("/api/v1/funnels", {}, 422, "steps"),
    ("/api/v1/funnels", {"steps": "a,b", "order": "sideways"}, 422, "order"),
    ("/api/v1/funnels", {"steps": "a,b", "window": "soon"}, 400, "window"),
    ("/api/v1/funnels", {"steps": "a,b", "since": "yesterday"}, 400, "since"),
    ("/api/v1/funnels", {"steps": "a,b", "by": "planet"}, 422, "by"),
    ("/api/v1/funnels", {"steps": "a[x=1", "until": "2026-01-01"}, 400, "steps"),
    ("/api/v1/funnels", {"steps": "a", "since": "9999-12-31T23:59:59-14:00"}, 400, "since"),
    ("/api/v1/funnels", {"steps": "a", "window": "99999999999d"}, 400, "window"),
    ("/api/v1/funnels", {"steps": "a,b", "breakdown": "traits."}, 400, "breakdown"),
    ("/api/v1/funnels", {"steps": "a,b", "exclude": "a@1-9"}, 400, "exclude"),
    ("/api/v1/paths", {"group": "([=x"}, 400, "group"),
    ("/api/v1/paths", {"since": "2026-05-01", "until": "2026-01-01"}, 400, "until"),
    ("/api/v1/retention", {"since": "2026-05-01", "until": "2026-01-01"}, 400, "until"),
    ("/api/v1/journey-map", {"last": "99999999w"}, 400, "last"),
    ("/api/v1/funnels/dropoffs", {"steps": "a,b", "step": 3}, 400, "step"),
    ("/api/v1/funnels/dropoffs", {"steps": "a,b", "step": 1}, 422, "step"),
    ("/api/v1/paths", {"steps": 1}, 422, "steps"),
    ("/api/v1/paths", {"where": "=="}, 400, "where"),
    ("/api/v1/retention", {"period": "year"}, 422, "period"),
    ("/api/v1/retention", {"periods": 0}, 422, "periods"),
    ("/api/v1/journey-map", {"compare": "weather"}, 400, "compare"),
    ("/api/v1/journey-map", {"last": "forever"}, 400, "last"),
    ("/api/v1/journey-map", {"since": "2026-02-01", "until": "2026-01-01"}, 400, "until"),
    ("/api/v1/journey-map", {"values": "a,b"}, 400, "values"),
    ("/api/v1/journey-map", {"format": "gif"}, 422, "format"),
    ("/api/v1/customer-value", {"segment": "Royalty"}, 400, "segment"),
    ("/api/v1/customer-value", {"customers": 5000}, 422, "customers"),
    ("/api/v1/customer-value", {"since": "2026-05-01", "until": "2026-01-01"}, 400, "until"),
]


def test_bad_parameters_are_named(site: Site) -> None:
    # One site for every case: building one per case would cost more than the requests.
    for path, params, status, field in BAD_PARAMETERS:
        r = site.client.get(path, params=params, headers=site.a.headers)
        assert r.status_code == status, (path, params, r.text)
        assert r.json()["field"] == field, (path, params, r.json())


def test_routes_need_a_key(site: Site) -> None:
    for path in ("/api/v1/funnels?steps=a,b", "/api/v1/journey-map", "/api/v1/paths"):
        assert site.client.get(path).status_code == 401


def test_map_downloads(site: Site, sample: SimulatedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    site.load(sample)
    c, h = site.client, site.a.headers
    csv = c.get("/api/v1/journey-map", params={"format": "csv"}, headers=h)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.startswith("view,stage,section,name,metric")
    assert "attachment" in csv.headers["content-disposition"]
    html = c.get("/api/v1/journey-map", params={"format": "html"}, headers=h)
    assert html.headers["content-type"].startswith("text/html")
    assert "Customer journey map" in html.text
    monkeypatch.setenv("WAYLINE_CHROMIUM", "/nonexistent/chromium")
    png = c.get("/api/v1/journey-map", params={"format": "png"}, headers=h)
    assert png.status_code == 503 and "Chromium" in png.json()["message"]


def test_openapi_describes_the_analytics(site: Site) -> None:
    doc = site.client.get("/openapi.json").json()
    for path in ("/api/v1/funnels", "/api/v1/paths", "/api/v1/retention", "/api/v1/journey-map"):
        assert path in doc["paths"]
    assert "FunnelOut" in doc["components"]["schemas"]
    assert "JourneyMapOut" in doc["components"]["schemas"]
