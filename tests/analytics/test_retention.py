"""Retention cohorts: declarative cases, period arithmetic, and the SQL against the reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import paths_reference as ref
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journey_logs import T0, duckdb_backend, ev, event_logs

from wayline.analytics.retention import (
    RetentionQuery,
    add_periods,
    period_start,
    periods_between,
    retention,
)
from wayline.errors import InputError

D = timedelta(days=1)
NOW = datetime(2026, 6, 15, tzinfo=UTC)


def test_monthly_cohorts_by_first_purchase() -> None:
    rows = [
        ev("a", "Order Completed", datetime(2026, 3, 5, tzinfo=UTC), revenue="10"),
        ev("a", "Order Completed", datetime(2026, 4, 30, 23, 59, tzinfo=UTC), revenue="10"),
        ev("a", "Order Completed", datetime(2026, 6, 1, tzinfo=UTC), revenue="10"),
        ev("b", "$page", datetime(2026, 2, 1, tzinfo=UTC)),  # seen before, first buys in March
        ev("b", "Order Completed", datetime(2026, 3, 31, 23, 0, tzinfo=UTC), revenue="5"),
        ev("c", "Order Completed", datetime(2026, 4, 2, tzinfo=UTC), revenue="5"),
        ev("c", "$page", datetime(2026, 5, 2, tzinfo=UTC)),  # a visit is not a purchase
    ]
    result = retention(duckdb_backend(rows), RetentionQuery(period="month"), now=NOW)
    march, april = result.cohorts
    assert (march.start, march.size, march.retained) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        2,
        (2, 1, 0, 1),  # March, April (a), May (nobody), June so far (a)
    )
    assert (april.size, april.retained) == (1, (1, 0, 0))
    assert march.rates[1] == 0.5
    assert result.average_rates()[1] == pytest.approx(1 / 3)

    seen = retention(duckdb_backend(rows), RetentionQuery(cohort="first_seen"), now=NOW)
    assert [c.start.month for c in seen.cohorts] == [2, 3, 4]
    feb = seen.cohorts[0]
    assert feb.retained == (1, 1, 0, 0, 0)  # b came back (bought) in March


def test_weeks_start_on_monday_utc() -> None:
    sunday_night = datetime(2026, 3, 8, 23, 30, tzinfo=UTC)
    assert period_start(sunday_night, "week") == datetime(2026, 3, 2, tzinfo=UTC)
    assert add_periods(datetime(2026, 11, 1, tzinfo=UTC), 3, "month") == datetime(
        2027, 2, 1, tzinfo=UTC
    )
    assert (
        periods_between(
            datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), "month"
        )
        == 3
    )


def test_invalid_queries() -> None:
    with pytest.raises(InputError):
        retention(duckdb_backend([]), RetentionQuery(periods=0), now=NOW)
    with pytest.raises(InputError):
        retention(duckdb_backend([]), RetentionQuery(purchase_events=()), now=NOW)


@st.composite
def queries(draw: st.DrawFn) -> RetentionQuery:
    return RetentionQuery(
        period=draw(st.sampled_from(["day", "week", "month"])),
        cohort=draw(st.sampled_from(["first_purchase", "first_seen"])),
        purchase_events=draw(st.sampled_from([("Order Completed",), ("Order Completed", "a")])),
        return_events=draw(st.sampled_from([None, ("a", "b")])),
        since=draw(st.sampled_from([None, T0 + 10 * D])),
        until=draw(st.sampled_from([None, T0 + 40 * D])),
        periods=draw(st.integers(1, 8)),
    )


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(rows=event_logs(days=60), q=queries(), now_days=st.integers(0, 70))
def test_matches_reference(rows: list[dict[str, Any]], q: RetentionQuery, now_days: int) -> None:
    now = T0 + now_days * D + timedelta(hours=5)
    got = retention(duckdb_backend(rows), q, now=now)
    assert {c.start: (c.size, c.retained) for c in got.cohorts} == ref.retention(rows, q, now)
