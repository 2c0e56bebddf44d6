"""The one-pass ordered funnel (numpy, :mod:`wayline.analytics.funnel_pass`) against the SQL
(ASOF) funnel it replaces on DuckDB and against the brute-force reference, on random logs."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from journey_logs import SqlOnly
from test_funnel_reference import assert_matches_reference, backend, logs, queries

from wayline.analytics.funnel_pass import (
    StepArrivals,
    ordered_arrivals,
    ordered_arrivals_in_parts,
)
from wayline.analytics.funnels import FunnelQuery, _one_pass, run_funnel


@st.composite
def ordered_queries(draw: st.DrawFn) -> FunnelQuery:
    q = draw(queries())
    return dataclasses.replace(q, order="ordered", exclusions=(), breakdown=None)


@pytest.mark.slow
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(logs(), ordered_queries())
def test_one_pass_equals_sql_and_reference(rows: list[dict[str, Any]], query: FunnelQuery) -> None:
    be = backend(rows)
    assert _one_pass(be, query)
    got = assert_matches_reference(rows, query)
    # Exactly the SQL funnel's figures, quantiles included (not only within a tolerance).
    assert got.steps == run_funnel(SqlOnly(be), query).steps


def assert_same_arrivals(a: list[StepArrivals], b: list[StepArrivals]) -> None:
    """The same units per step and the same times, in whatever order the rows came."""
    assert [s.users for s in a] == [s.users for s in b]
    for x, y in zip(a, b, strict=True):
        assert sorted(x.from_previous) == sorted(y.from_previous)
        assert sorted(x.from_start) == sorted(y.from_start)


def test_rows_in_any_order_give_the_same_arrivals() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    units = rng.integers(0, 40, n).astype(np.uint64)
    times = rng.integers(0, 500, n).astype(np.int64)
    masks = rng.integers(0, 8, n)
    order = np.lexsort((times, units))
    a = ordered_arrivals(units, times, masks, 3, 100)
    b = ordered_arrivals(units[order], times[order], masks[order], 3, 100, ordered=True)
    assert_same_arrivals(a, b)


def test_no_rows() -> None:
    empty = np.empty(0, dtype=np.int64)
    steps = ordered_arrivals(empty.astype(np.uint64), empty, empty, 3, None)
    assert [s.users for s in steps] == [0, 0, 0]


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_arrivals_in_parts_are_the_same(parts: int) -> None:
    rng = np.random.default_rng(4)
    n = 3000
    units = rng.integers(0, 60, n).astype(np.uint64)
    times = rng.integers(0, 400, n).astype(np.int64)
    masks = rng.integers(0, 16, n)
    order = np.lexsort((times, units))
    args = (units[order], times[order], masks[order], 4, 150)
    whole = ordered_arrivals(*args, ordered=True)
    split = ordered_arrivals_in_parts(*args, parts=parts, min_part=1)
    assert_same_arrivals(split, whole)
