"""Repeat purchases, time between orders and RFM: cases, then SQL against the reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import paths_reference as ref
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journey_logs import T0, duckdb_backend, ev, event_logs

from wayline.analytics.customer_value import (
    OrdersQuery,
    repeat_purchase,
    rfm,
    rfm_segment,
)
from wayline.errors import InputError

D = timedelta(days=1)
NOW = T0 + 100 * D


def _orders() -> list[dict[str, Any]]:
    return [
        ev("a", "Order Completed", T0, revenue="10.00"),
        ev("a", "Order Completed", T0 + 10 * D, revenue="15.50"),
        ev("a", "Order Completed", T0 + 40 * D, revenue="4.50"),
        ev("b", "purchase", T0 + 3 * D, revenue="100.00"),
        ev("c", "Order Completed", T0 + 5 * D, revenue="20.00"),
        ev("c", "Order Completed", T0 + 5 * D, revenue="20.00"),  # the same instant: still two
        ev("d", "Order Completed", T0 + 90 * D),  # no revenue given: counts as 0
        ev("e", "$page", T0),
    ]


def test_repeat_purchase_and_gaps() -> None:
    got = repeat_purchase(duckdb_backend(_orders()))
    assert (got.customers, got.repeat_customers, got.orders) == (3, 2, 6)
    assert got.rate == pytest.approx(2 / 3)
    assert got.revenue == Decimal("70.00")
    assert got.gaps == 3  # a: 10 d, 30 d; c: 0
    assert got.median_gap_seconds == 10 * 86_400
    assert got.median_seconds_to_second_order == 5 * 86_400  # (10 d + 0) / 2
    assert dict(got.gap_buckets) == {
        "0-7d": 1,
        "7-30d": 1,
        "30-60d": 1,
        "60-90d": 0,
        "90-180d": 0,
        "180d+": 0,
    }
    named = repeat_purchase(
        duckdb_backend(_orders()), OrdersQuery(purchase_events=("Order Completed", "purchase"))
    )
    assert named.customers == 4


def test_rfm_scores_and_segments() -> None:
    result = rfm(duckdb_backend(_orders()), now=NOW)
    by = {c.person_id: c for c in result.customers}
    assert set(by) == {"a", "c", "d"}
    # Recency: d (day 90) > a (day 40) > c (day 5): 1 + 5*worse // 3.
    assert (by["d"].r, by["a"].r, by["c"].r) == (4, 2, 1)
    assert (by["a"].f, by["c"].f, by["d"].f) == (4, 2, 1)
    assert (by["c"].m, by["a"].m, by["d"].m) == (4, 2, 1)
    assert by["a"].monetary == Decimal("30.00")
    assert by["d"].recency == 10 * D
    assert by["a"].segment == "At risk"
    assert sum(s.customers for s in result.segments()) == 3


def test_ties_share_a_score() -> None:
    rows = [ev(p, "Order Completed", T0, revenue="5") for p in "abcde"]
    scores = {(c.r, c.f, c.m) for c in rfm(duckdb_backend(rows), now=NOW).customers}
    assert scores == {(1, 1, 1)}


def test_segment_grid_is_total() -> None:
    names = {rfm_segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert "Champions" in names and "Hibernating" in names
    with pytest.raises(ValueError):
        rfm_segment(0, 1)


def test_invalid_query() -> None:
    with pytest.raises(InputError):
        repeat_purchase(duckdb_backend([]), OrdersQuery(purchase_events=()))


def test_empty_store() -> None:
    got = repeat_purchase(duckdb_backend([]))
    assert (got.customers, got.rate, got.median_gap_seconds) == (0, None, None)
    assert rfm(duckdb_backend([]), now=NOW).customers == ()


QUERIES = st.builds(
    OrdersQuery,
    purchase_events=st.sampled_from([("Order Completed",), ("Order Completed", "a")]),
    since=st.sampled_from([None, T0 + 2 * D]),
    until=st.sampled_from([None, T0 + 20 * D]),
)


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(rows=event_logs(days=40), q=QUERIES)
def test_repeat_purchase_matches_reference(rows: list[dict[str, Any]], q: OrdersQuery) -> None:
    got = repeat_purchase(duckdb_backend(rows), q)
    want = ref.repeat_purchase(rows, q)
    assert (
        got.customers,
        got.repeat_customers,
        got.orders,
        got.revenue,
        got.gaps,
        got.median_gap_seconds,
        got.mean_gap_seconds,
        got.median_seconds_to_second_order,
        tuple(n for _label, n in got.gap_buckets),
    ) == tuple(want.values())


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(rows=event_logs(days=40), q=QUERIES)
def test_rfm_matches_reference(rows: list[dict[str, Any]], q: OrdersQuery) -> None:
    got = rfm(duckdb_backend(rows), q, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert {c.person_id: (c.r, c.f, c.m) for c in got.customers} == ref.rfm(rows, q)
