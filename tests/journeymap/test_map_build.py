"""The journey map built from declarative event logs: every figure checked by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from map_logs import T0, ev, journey, open_store, small_store_rows

from wayline.analytics.backend import DuckDBBackend
from wayline.errors import ConfigError, InputError
from wayline.journeymap.build import Condition, MapQuery, build_map, map_queries, parse_condition
from wayline.journeymap.model import JourneyMap, to_json
from wayline.journeymap.render.csv import render_csv
from wayline.journeymap.render.markdown import render_markdown
from wayline.journeymap.stages import default_mapping
from wayline.storage.eventstore import EventStore

NOW = T0 + timedelta(days=30)
PERIOD = {"since": T0, "until": T0 + timedelta(days=10)}


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[DuckDBBackend]:
    store, backend = open_store(tmp_path, small_store_rows())
    try:
        yield backend
    finally:
        store.close()


def build(backend: DuckDBBackend, **kw: object) -> JourneyMap:
    q = MapQuery(**{**PERIOD, **kw})  # type: ignore[arg-type]
    return build_map(backend, q, default_mapping(), now=NOW)


def test_stage_figures(backend: DuckDBBackend) -> None:
    view = build(backend).views[0]
    got = {
        s.stage: (
            s.entered.value,
            s.moved_on.value if s.moved_on else None,
            s.dropped.value if s.dropped else None,
        )
        for s in view.stages
    }
    assert got == {
        "awareness": (4, 3, 1),
        "consideration": (3, 2, 1),
        "decision": (2, 1, 1),
        "retention": (1, 1, 0),
        "advocacy": (1, None, None),
    }
    assert view.persons.value == 4
    assert view.orders.value == 2
    assert view.revenue.value == Decimal("30.00")


def test_where_customers_drop_off(backend: DuckDBBackend) -> None:
    view = build(backend).views[0]
    drops = {s.stage: [(d.name, d.persons.value) for d in s.drop_offs] for s in view.stages}
    assert drops["awareness"] == [("$page:website", 1)]
    assert drops["consideration"] == [("Size Chart Opened", 1)]
    assert drops["decision"] == [("Product Added", 1)]


def test_actions_touchpoints_channels_devices(backend: DuckDBBackend) -> None:
    view = build(backend).views[0]
    consideration = view.stage("consideration")
    assert consideration is not None
    actions = {a.name: (a.persons.value, a.events.value) for a in consideration.actions}
    # p1 viewed products in two visits: 2 events, 1 customer.
    assert actions["Product Viewed"] == (3, 4)
    assert actions["$page:product_page"] == (1, 1)
    awareness = view.stage("awareness")
    assert awareness is not None
    assert {c.name: c.persons.value for c in awareness.channels} == {
        "social": 1,
        "search": 1,
        "ads": 1,
        "direct": 1,
    }
    assert {d.name: d.persons.value for d in awareness.devices} == {"mobile": 2, "desktop": 2}
    # Identity bookkeeping never shows as something customers do.
    assert all(a.name != "$identify" for s in view.stages for a in s.actions)


def test_kpis_and_funnel(backend: DuckDBBackend) -> None:
    view = build(backend).views[0]
    decision = view.stage("decision")
    retention = view.stage("retention")
    assert decision is not None and retention is not None
    kpi = {k.key: k.metric.value for k in decision.kpis}
    assert kpi["conversion_rate"] == pytest.approx(0.25)
    assert kpi["cart_abandonment_rate"] == pytest.approx(0.5)
    assert kpi["average_order_value"] == Decimal("15.00")
    assert {k.key: k.metric.value for k in retention.kpis}["repeat_purchase_rate"] == 1.0
    assert [(f.role, f.persons.value) for f in view.funnel] == [
        ("page_view", 4),
        ("product_view", 3),
        ("add_to_cart", 2),
        ("checkout", 1),
        ("payment", 1),
        ("purchase", 1),
    ]
    assert view.funnel[2].events == ("Product Added",)


def test_unknown_events_are_listed_with_a_suggestion(backend: DuckDBBackend) -> None:
    m = build(backend)
    assert [(u.name, u.events, u.suggested_stage) for u in m.unknown_events] == [
        ("Size Chart Opened", 1, "consideration")
    ]


def test_segment_and_side_by_side(backend: DuckDBBackend) -> None:
    social = build(backend, conditions=(Condition("channel", "social"),)).views[0]
    # First touch: p1 came from social, though their second visit came by e-mail.
    assert social.persons.value == 1
    assert social.segment == {"channel": "social"}
    devices = build(backend, breakdown="device", breakdown_values=("mobile", "desktop"))
    assert [(v.label, v.persons.value) for v in devices.views] == [
        ("device: mobile", 2),
        ("device: desktop", 2),
    ]
    mobile = devices.views[0].stage("decision")
    assert mobile is not None and mobile.entered.value == 1


def test_customer_type(tmp_path: Path) -> None:
    rows = small_store_rows()
    rows.append(ev("p2", "Order Completed", -60 * 24, revenue="5.00"))  # ordered before
    rows.append(ev("p3", "$page", -60 * 24, page="/"))  # seen before
    store, backend = open_store(tmp_path, rows)
    with store:
        m = build(
            backend, breakdown="customer_type", breakdown_values=("new", "returning", "loyal")
        )
    assert [(v.label, v.persons.value) for v in m.views] == [
        ("customer: new", 2),
        ("customer: returning", 1),
        ("customer: loyal", 1),
    ]


def test_compare_previous(tmp_path: Path) -> None:
    rows = small_store_rows()
    rows += journey("p5", -60 * 24 * 5, ["$page:/", "Product Viewed", "Order Completed=50.00"])
    store, backend = open_store(tmp_path, rows)
    with store:
        m = build(backend, compare_previous=True)
    assert m.previous_since == T0 - timedelta(days=10)
    view = m.views[0]
    assert (view.persons.value, view.persons.previous, view.persons.change) == (4, 1, 3)
    assert view.revenue.previous == Decimal("50.00")
    decision = view.stage("decision")
    assert decision is not None
    conv = decision.kpi("conversion_rate")
    assert conv is not None
    assert conv.metric.previous == 1.0
    assert conv.metric.change == pytest.approx(-0.75)
    md = render_markdown(m)
    assert "-75.0 pp" in md and "compared with" in md


def test_json_follows_the_documented_schema(backend: DuckDBBackend) -> None:
    schema = json.loads(
        resources.files("wayline.journeymap").joinpath("journey_map.schema.json").read_text()
    )
    data = json.loads(json.dumps(to_json(build(backend, compare_previous=True))))
    jsonschema.validate(data, schema)
    # The schema is strict: a field the docs do not know fails it.
    data["views"][0]["stages"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_markdown_table_and_csv(backend: DuckDBBackend) -> None:
    m = build(backend)
    md = render_markdown(m)
    assert "| Stage | Customer action | Touchpoints | Pain point | Solution | KPI |" in md
    assert "| Decision | Product Added (2)" in md
    assert "Size Chart Opened" in md
    csv_text = render_csv(m)
    assert csv_text.splitlines()[0] == "view,stage,section,name,metric,value,unit,previous,change"
    assert "All customers,decision,kpi,Conversion rate,conversion_rate,0.25,rate,," in csv_text


def test_empty_workspace_and_bad_queries(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.duckdb") as store, pytest.raises(InputError, match="no events"):
        build_map(DuckDBBackend(store.con), MapQuery(), default_mapping(), now=NOW)
    with pytest.raises(InputError):
        parse_condition("device")
    with pytest.raises(InputError):
        build_map(
            DuckDBBackend(None),
            MapQuery(since=T0, until=T0),
            default_mapping(),
            now=NOW,
        )


def test_other_backends_are_refused_clearly() -> None:
    @dataclass
    class Postgres:
        dialect: str = "postgres"

        def fetch(self, sql: str, params: object = ()) -> list[tuple[object, ...]]:
            raise AssertionError("no query should run")

    with pytest.raises(ConfigError, match="DuckDB"):
        build_map(Postgres(), MapQuery(), default_mapping(), now=NOW)


def test_sql_is_built_without_running() -> None:
    """The query is data: the stage mapping rides along as parameters, never in the text."""
    mapping = default_mapping()
    classes = {n: mapping.classify(n) for n in ("Product Viewed", "Robert'); DROP TABLE x;--")}
    q = map_queries(MapQuery(), mapping, classes, T0, T0 + timedelta(days=1))
    for sql in q.statements:
        assert "DROP TABLE" not in sql.text
        assert "Robert'); DROP TABLE x;--" in sql.params
        assert sql.text.count("?") == len(sql.params)
