"""Lifecycle: per period, how many customers are new, returning, resurrecting or dormant.

The states are PostHog's lifecycle states, applied to customers (``person_id`` after identity
resolution) and to *active* periods: a customer is active in a period (UTC day, ISO week or
month) when they have at least one qualifying event in it — any event by default, or only the
events named in ``events`` (e.g. the purchase events, for a customer lifecycle by orders).

For each reported period ``P``, with ``P-1`` the period before it:

- **new**: active in ``P``, and ``P`` is the customer's first active period ever (PostHog uses
  the person's creation date; here it is their first qualifying event, so that "new buyers"
  means first orders when ``events`` are the orders);
- **returning**: active in ``P`` and in ``P-1``;
- **resurrecting**: active in ``P``, not in ``P-1``, and active in some period before;
- **dormant**: active in ``P-1`` but not in ``P`` (PostHog draws these below the axis; here they
  are a positive count).

Every active customer is in exactly one of the first three states; dormant customers are the
ones who just left. History before ``since`` counts (a customer first seen a year ago is not
new today). Periods from the one holding ``since`` to the last one started before ``until`` (or
``now``) are reported, each with all four counts (zeros included). The *quick ratio*
``(new + resurrecting) / dormant`` says whether the active base grows (> 1) or shrinks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wayline.analytics.backend import Backend
from wayline.analytics.filters import PropertyFilter, date_range_sql
from wayline.analytics.query import CompiledQuery, Params, events_where_sql
from wayline.analytics.retention import (
    PERIODS,
    Period,
    add_periods,
    as_utc,
    in_list_sql,
    period_sql,
    period_start,
    require_aware,
)
from wayline.errors import InputError

STATES = ("new", "returning", "resurrecting", "dormant")
_STEP = {"day": "INTERVAL '1 day'", "week": "INTERVAL '7 days'", "month": "INTERVAL '1 month'"}


@dataclass(frozen=True)
class LifecycleQuery:
    workspace_id: str = "default"
    period: Period = "week"
    events: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    filters: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class LifecyclePeriod:
    start: datetime
    new: int
    returning: int
    resurrecting: int
    dormant: int

    @property
    def active(self) -> int:
        return self.new + self.returning + self.resurrecting

    @property
    def quick_ratio(self) -> float | None:
        return (self.new + self.resurrecting) / self.dormant if self.dormant else None


@dataclass(frozen=True)
class LifecycleResult:
    query: LifecycleQuery
    periods: tuple[LifecyclePeriod, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.query.period,
            "events": list(self.query.events) if self.query.events else None,
            "periods": [
                {
                    "start": p.start.isoformat(),
                    "new": p.new,
                    "returning": p.returning,
                    "resurrecting": p.resurrecting,
                    "dormant": p.dormant,
                    "active": p.active,
                    "quick_ratio": p.quick_ratio,
                }
                for p in self.periods
            ],
        }


def validate(q: LifecycleQuery) -> LifecycleQuery:
    if q.period not in PERIODS:
        raise InputError(f"period must be one of {', '.join(PERIODS)}", field="period")
    if q.events is not None and not q.events:
        raise InputError("name at least one event, or none for any event", field="events")
    date_range_sql(q.since, q.until)
    return q


def lifecycle_query(q: LifecycleQuery, end: datetime, dialect: str = "duckdb") -> CompiledQuery:
    """SQL of (period start, state, customers) for every state of every period before
    ``end``'s period and after ``since``'s (history before ``since`` is read, not reported)."""
    p = Params()
    where = events_where_sql(
        p, workspace_id=q.workspace_id, since=None, until=end, filters=q.filters, dialect=dialect
    )
    if q.events is not None:
        where += " AND " + in_list_sql(p, "event", q.events)
    step = _STEP[q.period]
    lo = ""
    if q.since is not None:
        lo = f"AND period >= {p(period_start(q.since, q.period).replace(tzinfo=None))}"
    sql = f"""
WITH active AS (
    SELECT DISTINCT person_id, {period_sql('"timestamp"', q.period)} AS period
    FROM events WHERE {where}
),
marked AS (
    SELECT person_id, period,
        lag(period) OVER (PARTITION BY person_id ORDER BY period) AS prev,
        lead(period) OVER (PARTITION BY person_id ORDER BY period) AS next
    FROM active
),
states AS (
    SELECT period,
        CASE WHEN prev IS NULL THEN 'new'
             WHEN prev + {step} = period THEN 'returning'
             ELSE 'resurrecting' END AS state
    FROM marked
    UNION ALL
    SELECT period + {step}, 'dormant' FROM marked
    WHERE next IS NULL OR next <> period + {step}
)
SELECT period, state, count(*) FROM states
WHERE period < {p(end.astimezone(UTC).replace(tzinfo=None))} {lo}
GROUP BY period, state
"""
    return p.compile(sql)


def lifecycle(
    backend: Backend, q: LifecycleQuery | None = None, *, now: datetime
) -> LifecycleResult:
    """Lifecycle counts per period (see the module docstring)."""
    q = validate(q or LifecycleQuery())
    now = require_aware(now)
    end = min(now, q.until) if q.until is not None else now
    cq = lifecycle_query(q, end, backend.dialect)
    counts: dict[tuple[datetime, str], int] = {}
    for period, state, n in backend.fetch(cq.sql, cq.params):
        counts[(as_utc(period), state)] = int(n)
    if q.since is not None:
        first = period_start(q.since, q.period)
    elif counts:
        first = min(start for start, _ in counts)
    else:
        return LifecycleResult(q, ())
    periods = []
    start = first
    while start < end:
        periods.append(LifecyclePeriod(start, *(counts.get((start, state), 0) for state in STATES)))
        start = add_periods(start, 1, q.period)
    return LifecycleResult(q, tuple(periods))
