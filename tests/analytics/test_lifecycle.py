"""Lifecycle states per period: a declarative case, then SQL against the reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import paths_reference as ref
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journey_logs import T0, duckdb_backend, ev, event_logs

from wayline.analytics.lifecycle import LifecycleQuery, lifecycle
from wayline.errors import InputError

D = timedelta(days=1)


def test_weekly_states() -> None:
    # Weeks start on Mondays: T0 is Monday 2 March 2026.
    rows = [
        ev("a", "x", T0),
        ev("a", "x", T0 + 7 * D),  # week 2: returning
        ev("a", "x", T0 + 21 * D),  # week 4: resurrecting (absent in week 3)
        ev("b", "x", T0 + 8 * D),  # week 2: new; week 3: dormant
        ev("c", "x", T0 - 30 * D),  # seen long before the range
        ev("c", "x", T0 + 1 * D),  # week 1: resurrecting, not new
    ]
    result = lifecycle(
        duckdb_backend(rows), LifecycleQuery(period="week", since=T0), now=T0 + 22 * D
    )
    table = {p.start: (p.new, p.returning, p.resurrecting, p.dormant) for p in result.periods}
    week = T0.replace(hour=0)
    assert table == {
        week: (1, 0, 1, 0),
        week + 7 * D: (1, 1, 0, 1),  # c went dormant
        week + 14 * D: (0, 0, 0, 2),  # a and b dormant
        week + 21 * D: (0, 0, 1, 0),
    }
    assert result.periods[1].quick_ratio == 1.0
    assert result.periods[1].active == 2


def test_invalid_period() -> None:
    with pytest.raises(InputError):
        lifecycle(duckdb_backend([]), LifecycleQuery(period="year"), now=T0)  # type: ignore[arg-type]


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(
    rows=event_logs(days=50),
    period=st.sampled_from(["day", "week", "month"]),
    events=st.sampled_from([None, ("Order Completed",), ("a", "b")]),
    since=st.sampled_from([None, T0 + 9 * D]),
    now_days=st.integers(0, 60),
)
def test_matches_reference(
    rows: list[dict[str, Any]], period: Any, events: Any, since: Any, now_days: int
) -> None:
    q = LifecycleQuery(period=period, events=events, since=since)
    now = T0 + now_days * D + timedelta(hours=3)
    got = lifecycle(duckdb_backend(rows), q, now=now)
    assert {
        p.start: (p.new, p.returning, p.resurrecting, p.dormant) for p in got.periods
    } == ref.lifecycle(rows, q, now)


def test_month_arithmetic_across_years() -> None:
    rows = [ev("a", "x", datetime(2025, 12, 31, 23, 0, tzinfo=UTC))]
    got = lifecycle(
        duckdb_backend(rows), LifecycleQuery(period="month"), now=datetime(2026, 2, 2, tzinfo=UTC)
    )
    assert [(p.start.month, p.new, p.dormant) for p in got.periods] == [
        (12, 1, 0),
        (1, 0, 1),
        (2, 0, 0),
    ]
