"""Paths and transitions: declarative cases, then the SQL against the brute-force reference."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import paths_reference as ref
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journey_logs import T0, duckdb_backend, ev, event_logs

from wayline.analytics.filters import PropertyFilter
from wayline.analytics.paths import (
    PATH_END,
    PATH_START,
    GroupRule,
    PathsQuery,
    paths,
    transitions,
)
from wayline.errors import InputError

M = timedelta(minutes=1)


def _journeys() -> list[dict[str, Any]]:
    return [
        # p1: home → product → product → cart → order
        ev("p1", "$page", T0, page_path="/"),
        ev("p1", "$page", T0 + 1 * M, page_path="/product/1"),
        ev("p1", "$page", T0 + 3 * M, page_path="/product/2"),
        ev("p1", "Product Added", T0 + 4 * M),
        ev("p1", "Order Completed", T0 + 10 * M, revenue="20.00"),
        # p2: home → product, leaves
        ev("p2", "$page", T0, page_path="/"),
        ev("p2", "$page", T0 + 2 * M, page_path="/product/1"),
        # p3 (an anonymous visitor merged into user p3): product → cart, leaves
        ev("p3", "$page", T0, page_path="/product/7", anonymous_id="anon-9"),
        ev("p3", "Product Added", T0 + 5 * M, user_id="p3"),
    ]


GROUP = (GroupRule("/product/.*", "product_view"),)


def test_transitions_have_virtual_nodes_shares_and_medians() -> None:
    got = {
        (t.source, t.target): t
        for t in transitions(
            duckdb_backend(_journeys()), PathsQuery(groups=GROUP, collapse_repeats=False)
        )
    }
    assert got[(PATH_START, "/")].count == 2
    assert got[(PATH_START, "product_view")].count == 1
    assert got[(PATH_START, "/")].share == pytest.approx(2 / 3)
    pv = got[("/", "product_view")]
    assert (pv.count, pv.persons, pv.median_seconds) == (2, 2, 90.0)  # 60 s and 120 s
    assert got[("product_view", "product_view")].count == 1  # a self-loop without collapsing
    assert got[("product_view", PATH_END)].count == 1
    assert got[("Order Completed", PATH_END)].median_seconds is None
    out_of_pv = [t for t in got.values() if t.source == "product_view"]
    assert sum(t.share for t in out_of_pv) == pytest.approx(1.0)


def test_paths_from_an_anchor_make_a_sankey() -> None:
    result = paths(
        duckdb_backend(_journeys()), PathsQuery(groups=GROUP, start="product_view", steps=3)
    )
    assert result.units == 3
    links = {(link.source, link.target): link.value for link in result.links}
    assert links == {
        ("1_product_view", "2_Product Added"): 2,
        ("1_product_view", "2_path_end"): 1,
        ("2_Product Added", "3_Order Completed"): 1,
        ("2_Product Added", "3_path_end"): 1,
        ("3_Order Completed", "4_path_end"): 1,
        ("0_path_start", "1_product_view"): 1,
    }
    assert {n.id: n.step for n in result.nodes}["3_Order Completed"] == 3
    top = {p.items: p.count for p in result.top_paths}
    assert top[("product_view", "Product Added", "Order Completed", PATH_END)] == 1
    assert top[(PATH_START, "product_view", "Product Added", PATH_END)] == 1


def test_paths_to_an_anchor_are_aligned_on_it() -> None:
    result = paths(
        duckdb_backend(_journeys()), PathsQuery(groups=GROUP, end="Product Added", steps=2)
    )
    links = {(link.source, link.target): link.value for link in result.links}
    assert links[("-1_product_view", "0_Product Added")] == 2
    assert links[("-2_path_start", "-1_product_view")] == 1  # p3 started right there
    assert links[("0_Product Added", "1_path_end")] == 1


def test_edge_limit_and_json_shape() -> None:
    result = paths(duckdb_backend(_journeys()), PathsQuery(edge_limit=2))
    assert len(result.links) == 2
    data = result.to_dict()
    node_ids = {n["id"] for n in data["nodes"]}
    assert all(link["source"] in node_ids and link["target"] in node_ids for link in data["links"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (PathsQuery(steps=0), "steps"),
        (PathsQuery(edge_limit=0), "edge_limit"),
        (PathsQuery(groups=(GroupRule("(", "x"),)), "group"),
        (PathsQuery(start="a", exclude=("a",)), "start"),
        (PathsQuery(by="visit"), "by"),  # type: ignore[arg-type]
        (PathsQuery(since=T0, until=T0), None),
    ],
)
def test_invalid_queries_say_which_field(query: PathsQuery, field: str | None) -> None:
    with pytest.raises(InputError) as err:
        paths(duckdb_backend([]), query)
    assert err.value.field == field


def test_group_rule_parsing() -> None:
    assert GroupRule.parse("/product/.*=product_view") == GroupRule("/product/.*", "product_view")
    with pytest.raises(InputError):
        GroupRule.parse("no-equals-sign")


NAMES = ["a", "b", "c", "$page", "Order Completed", "/", "/cart", "product_view"]


@st.composite
def queries(draw: st.DrawFn) -> PathsQuery:
    anchors = st.none() | st.sampled_from(NAMES)
    start, end = draw(anchors), draw(anchors)
    exclude = tuple(
        x for x in draw(st.lists(st.sampled_from(NAMES), max_size=2)) if x not in (start, end)
    )
    return PathsQuery(
        by=draw(st.sampled_from(["person", "session"])),
        item=draw(st.sampled_from(["event", "event_or_page"])),
        groups=draw(st.sampled_from([(), GROUP, (GroupRule("a|b", "ab"), *GROUP)])),
        exclude=exclude,
        collapse_repeats=draw(st.booleans()),
        start=start,
        end=end,
        steps=draw(st.integers(1, 4)),
        edge_limit=1000,
        path_limit=1000,
        since=draw(st.sampled_from([None, T0 + 1 * M])),
        until=draw(st.sampled_from([None, T0 + 45 * M])),
        filters=draw(st.sampled_from([(), (PropertyFilter("page_path", "neq", "/cart"),)])),
    )


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(rows=event_logs(), q=queries())
def test_transitions_match_reference(rows: list[dict[str, Any]], q: PathsQuery) -> None:
    got = {
        (t.source, t.target): (t.count, t.persons, t.share, t.median_seconds)
        for t in transitions(duckdb_backend(rows), q)
    }
    assert got == ref.transitions(rows, q)


@pytest.mark.slow
@settings(max_examples=120, deadline=None)
@given(rows=event_logs(), q=queries())
def test_paths_match_reference(rows: list[dict[str, Any]], q: PathsQuery) -> None:
    result = paths(duckdb_backend(rows), q)
    links, units = ref.sankey(rows, q)
    got = {
        (link.source, link.target): (link.value, link.persons, link.share, link.median_seconds)
        for link in result.links
    }
    assert got == links
    assert result.units == units
    assert {p.items: (p.count, p.persons) for p in result.top_paths} == ref.top_paths(rows, q)


@pytest.mark.parametrize(
    "q",
    [
        PathsQuery(),
        PathsQuery(start="a", end="b", groups=GROUP, exclude=("c",), by="session"),
        PathsQuery(end="b", since=T0, until=T0 + M, collapse_repeats=False),
    ],
)
def test_sql_is_data_with_matching_parameters(q: PathsQuery) -> None:
    from wayline.analytics.backend import transpile
    from wayline.analytics.paths import paths_query, transitions_query

    for cq in (paths_query(q), transitions_query(q)):
        assert cq.sql.count("?") == len(cq.params)
        assert "@@" not in cq.sql
        assert transpile(cq.sql, "postgres").count("%s") == len(cq.params)
    assert paths_query(q) == paths_query(q)  # pure: same query, same SQL
