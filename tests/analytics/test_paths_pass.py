"""Paths cut in numpy (:mod:`wayline.analytics.paths_pass`) against the all-SQL query they
replace on DuckDB, and against the brute-force reference, on random logs: per person and per
session, with and without anchors."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import paths_reference as ref
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journey_logs import SqlOnly, duckdb_backend, event_logs
from test_paths import queries

from wayline.analytics.paths import PathsQuery, _one_pass, paths
from wayline.analytics.paths_pass import WindowRows, windows, windows_in_parts


@st.composite
def any_queries(draw: st.DrawFn) -> PathsQuery:
    q = draw(queries())
    return dataclasses.replace(q, path_limit=draw(st.sampled_from([3, 1000])))


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(rows=event_logs(), q=any_queries())
def test_one_pass_equals_sql_and_reference(rows: list[dict[str, Any]], q: PathsQuery) -> None:
    be = duckdb_backend(rows)
    assert _one_pass(be, q)
    got = paths(be, q)
    assert got == paths(SqlOnly(be), q)
    links, units = ref.sankey(rows, q)
    assert {
        (link.source, link.target): (link.value, link.persons, link.share, link.median_seconds)
        for link in got.links
    } == links
    assert got.units == units


@pytest.mark.parametrize("collapse", [True, False])
def test_windows_in_parts_are_the_same_rows(collapse: bool) -> None:
    rng = np.random.default_rng(5)
    n = 5000
    units = rng.integers(0, 2**64 - 1, 300, dtype=np.uint64)[rng.integers(0, 300, n)]
    times = rng.integers(0, 200, n).astype(np.int64)
    ranks = rng.integers(0, 4, n).astype(np.int64)
    items = ranks // 2  # equal items from different raw items, as grouping rules make
    epochs = times / 1e6

    def rows(w: WindowRows) -> list[tuple[Any, ...]]:
        gaps = [None if np.isnan(g) else float(g) for g in w.gap]
        sources = [
            s if has else None for s, has in zip(w.source.tolist(), w.has_source, strict=True)
        ]
        columns = (w.row.tolist(), w.step.tolist(), w.item.tolist(), sources)
        return sorted(zip(*columns, gaps, w.is_end.tolist(), strict=True), key=repr)

    args = (units, times, ranks, items, epochs)
    for start, end in (
        (None, None),
        (items == 1, None),
        (None, items == 0),
        (items == 1, items == 0),
    ):
        anchors = {"at_start": start, "at_end": end}
        whole = windows(*args, steps=3, collapse_repeats=collapse, **anchors)
        for parts in (2, 3):
            split = windows_in_parts(
                *args, steps=3, collapse_repeats=collapse, parts=parts, min_part=1, **anchors
            )
            assert rows(split) == rows(whole)
        assert len(whole.step) > 100
