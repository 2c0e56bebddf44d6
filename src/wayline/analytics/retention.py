"""Retention: do customers come back, period after period, after they first bought (or came)?

Definitions (checked against a brute-force reference on random logs):

**Periods** are UTC calendar days, ISO weeks (starting Monday) or calendar months. Period
``n`` after period ``P`` is the period starting ``n`` days/weeks/months after ``P``'s start.

**Cohort.** A customer (``person_id``, after identity resolution) belongs to the cohort of the
period holding their *first ever* cohort event — with ``cohort="first_purchase"`` (default) the
first event named one of ``purchase_events`` (``Order Completed`` unless told otherwise), with
``cohort="first_seen"`` their first event of any name. "Ever" means across the whole store, not
only the reported range: a customer who first bought before ``since`` is not in a later cohort.
Only the cohorts of the periods from the one holding ``since`` to the one before ``until`` (or
``now``) are reported.

**Retention.** ``retained[n]`` of a cohort = the number of its customers with at least one
*return event* in period ``n`` after the cohort period; the rate is ``retained[n] / size``.
Return events are the purchase events for ``first_purchase`` and any event for ``first_seen``,
unless ``return_events`` names others. Period 0 holds the cohort event itself, so it is 100 %
whenever the return events include the cohort events (as PostHog and Amplitude show it).
Periods that have not started at ``now`` (or ``until``, whichever is earlier) are not reported:
a cohort from last week has one or two numbers, not a row of zeros it could not yet fill.

Property filters (:mod:`wayline.analytics.filters`) restrict both cohort and return events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from wayline.analytics.backend import Backend
from wayline.analytics.filters import PropertyFilter, date_range_sql
from wayline.analytics.query import CompiledQuery, Params, events_where_sql
from wayline.errors import InputError

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
DEFAULT_PURCHASE_EVENTS: tuple[str, ...] = ("Order Completed",)


# --- periods (pure) -------------------------------------------------------------------------


def period_start(moment: datetime, period: Period) -> datetime:
    """The UTC start of the day / ISO week / month holding ``moment``."""
    moment = moment.astimezone(UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def add_periods(start: datetime, n: int, period: Period) -> datetime:
    """The start of the period ``n`` periods after the one starting at ``start``."""
    if period == "day":
        return start + timedelta(days=n)
    if period == "week":
        return start + timedelta(weeks=n)
    months = start.year * 12 + start.month - 1 + n
    return start.replace(year=months // 12, month=months % 12 + 1, day=1)


def periods_between(first: datetime, later: datetime, period: Period) -> int:
    """How many periods after ``first``'s period ``later``'s period is (both period starts)."""
    if period == "month":
        return (later.year - first.year) * 12 + later.month - first.month
    days = (later - first).days
    return days if period == "day" else days // 7


def period_sql(column: str, period: Period) -> str:
    """SQL of the UTC period start (a TIMESTAMP without time zone) of a TIMESTAMPTZ column."""
    return f"date_trunc('{period}', timezone('UTC', {column}))"


def as_utc(value: datetime) -> datetime:
    """A period start as fetched (naive, in UTC) → an aware UTC datetime."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def require_aware(now: datetime) -> datetime:
    """``now`` as UTC; a naive clock is a programming error, not a user's."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def in_list_sql(p: Params, column: str, names: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(p(n) for n in names)})"


# --- query ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionQuery:
    """What to measure. See the module docstring."""

    workspace_id: str = "default"
    period: Period = "month"
    cohort: Literal["first_purchase", "first_seen"] = "first_purchase"
    purchase_events: tuple[str, ...] = DEFAULT_PURCHASE_EVENTS
    return_events: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    periods: int = 12
    filters: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class Cohort:
    """One cohort row: ``retained[n]`` customers came back in period ``n`` (n = 0, 1, …)."""

    start: datetime
    size: int
    retained: tuple[int, ...]

    @property
    def rates(self) -> tuple[float, ...]:
        return tuple(r / self.size for r in self.retained)


@dataclass(frozen=True)
class RetentionResult:
    query: RetentionQuery
    now: datetime
    cohorts: tuple[Cohort, ...]

    def average_rates(self) -> tuple[float | None, ...]:
        """Per period n: customers retained in n over the size of the cohorts that reached n
        (weighted by cohort size, as PostHog's "mean" row)."""
        width = max((len(c.retained) for c in self.cohorts), default=0)
        out: list[float | None] = []
        for n in range(width):
            reached = [c for c in self.cohorts if len(c.retained) > n]
            size = sum(c.size for c in reached)
            out.append(sum(c.retained[n] for c in reached) / size if size else None)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.query.period,
            "cohort": self.query.cohort,
            "now": self.now.isoformat(),
            "cohorts": [
                {
                    "start": c.start.isoformat(),
                    "size": c.size,
                    "retained": list(c.retained),
                    "rates": list(c.rates),
                }
                for c in self.cohorts
            ],
            "average_rates": list(self.average_rates()),
        }


def validate(q: RetentionQuery) -> RetentionQuery:
    if q.period not in PERIODS:
        raise InputError(f"period must be one of {', '.join(PERIODS)}", field="period")
    if q.cohort not in ("first_purchase", "first_seen"):
        raise InputError("cohort must be first_purchase or first_seen", field="cohort")
    if q.cohort == "first_purchase" and not q.purchase_events:
        raise InputError("name at least one purchase event", field="purchase_events")
    if q.return_events is not None and not q.return_events:
        raise InputError("name at least one return event", field="return_events")
    if not 1 <= q.periods <= 400:
        raise InputError("periods must be between 1 and 400", field="periods")
    date_range_sql(q.since, q.until)
    return q


def _events(q: RetentionQuery, p: Params, names: tuple[str, ...] | None, dialect: str) -> str:
    where = events_where_sql(
        p, workspace_id=q.workspace_id, since=None, until=None, filters=q.filters, dialect=dialect
    )
    if names is not None:
        where += " AND " + in_list_sql(p, "event", names)
    return where


def _return_events(q: RetentionQuery) -> tuple[str, ...] | None:
    if q.return_events is not None:
        return q.return_events
    return q.purchase_events if q.cohort == "first_purchase" else None


def retention_query(q: RetentionQuery, end: datetime, dialect: str = "duckdb") -> CompiledQuery:
    """SQL of (cohort start, active period start, customers) for cohorts starting in
    ``[since, end)`` and activity before ``end``; cohort sizes come as rows with a NULL
    active period."""
    p = Params()
    cohort_names = q.purchase_events if q.cohort == "first_purchase" else None
    first = period_sql('min("timestamp")', q.period)
    cohort_where = ""
    if q.since is not None:
        cohort_where = f"WHERE c >= {p(period_start(q.since, q.period).replace(tzinfo=None))}"
    sql = f"""
WITH cohort AS (
    SELECT person_id, c FROM (
        SELECT person_id, {first} AS c FROM events
        WHERE {_events(q, p, cohort_names, dialect)}
        GROUP BY person_id
    ) AS _c {cohort_where}
),
active AS (
    SELECT DISTINCT person_id, {period_sql('"timestamp"', q.period)} AS a FROM events
    WHERE {_events(q, p, _return_events(q), dialect)} AND "timestamp" < {p(end)}
)
SELECT cohort.c, active.a, count(*) AS n
FROM cohort JOIN active ON active.person_id = cohort.person_id AND active.a >= cohort.c
WHERE cohort.c < {p(end.astimezone(UTC).replace(tzinfo=None))}
GROUP BY cohort.c, active.a
UNION ALL
SELECT c, NULL, count(*) FROM cohort
WHERE c < {p(end.astimezone(UTC).replace(tzinfo=None))}
GROUP BY c
"""
    return p.compile(sql)


def retention(backend: Backend, q: RetentionQuery, *, now: datetime) -> RetentionResult:
    """Cohorts and their retention per following period (see the module docstring)."""
    q = validate(q)
    now = require_aware(now)
    end = min(now, q.until) if q.until is not None else now
    cq = retention_query(q, end, backend.dialect)
    sizes: dict[datetime, int] = {}
    counts: dict[tuple[datetime, int], int] = {}
    for c, a, n in backend.fetch(cq.sql, cq.params):
        start = as_utc(c)
        if a is None:
            sizes[start] = int(n)
        else:
            counts[(start, periods_between(start, as_utc(a), q.period))] = int(n)
    cohorts = []
    for start in sorted(sizes):
        reached = 0
        while reached < q.periods and add_periods(start, reached, q.period) < end:
            reached += 1
        retained = tuple(counts.get((start, n), 0) for n in range(reached))
        cohorts.append(Cohort(start, sizes[start], retained))
    return RetentionResult(q, now, tuple(cohorts))
