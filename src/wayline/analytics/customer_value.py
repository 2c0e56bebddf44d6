"""Customer value: repeat purchases, time between orders, and RFM scores.

Definitions (checked against a brute-force reference on random logs):

**Orders** are the events named one of ``purchase_events`` (``Order Completed`` by default; a
store may call them ``purchase`` or ``order_completed``) of the workspace in ``[since, until)``
that pass the property filters. A *customer* is a ``person_id`` (after identity resolution) with
at least one order; each order row counts, also two at the same instant.

**Repeat-purchase rate** = customers with two or more orders / customers.

**Time between orders.** A customer's orders sorted by time give ``n - 1`` gaps (a tie is a
gap of 0). Reported: how many gaps, their median and mean (seconds, to the millisecond; the
median of an even count is the mean of the middle two), the median time from the first to the
second order, and the gaps counted in buckets ``[0, 7)``, ``[7, 30)``, ``[30, 60)``,
``[60, 90)``, ``[90, 180)`` and ``[180, ∞)`` days.

**RFM.** Per customer: *recency* = time from the last order to ``as_of`` (``until`` if given,
else ``now``); *frequency* = number of orders; *monetary* = sum of ``revenue`` (a missing revenue
counts 0), exact Decimal. Each is scored 1–5 by quintile: a customer's score is
``1 + floor(5 × (customers with a strictly worse value) / customers)``, where worse is an older
last order, fewer orders, less money. Customers with equal values share a score (the lower one
a split would give), so the score never depends on row order — and a value shared by many
customers (most have one order) can leave a quintile empty. Segments follow the classic R×F
grid (Champions ``R 5, F 4-5``, Loyal ``R 3-4, F 4-5``, At risk ``R 1-2, F 3-4``…, see
:data:`RFM_SEGMENTS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from wayline.analytics.backend import Backend
from wayline.analytics.filters import PropertyFilter, date_range_sql
from wayline.analytics.query import CompiledQuery, Params, events_where_sql
from wayline.analytics.retention import DEFAULT_PURCHASE_EVENTS, in_list_sql, require_aware
from wayline.errors import InputError

CENT = Decimal("0.01")
DAY = 86_400.0

#: Gap buckets in days: (label, lower bound inclusive, upper bound exclusive or None).
GAP_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7d", 0, 7),
    ("7-30d", 7, 30),
    ("30-60d", 30, 60),
    ("60-90d", 60, 90),
    ("90-180d", 90, 180),
    ("180d+", 180, None),
)

#: (pattern on "<R><F>", segment): the first match names the segment.
RFM_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("[1-2][1-2]", "Hibernating"),
    ("[1-2][3-4]", "At risk"),
    ("[1-2]5", "Can't lose them"),
    ("3[1-2]", "About to sleep"),
    ("33", "Need attention"),
    ("[3-4][4-5]", "Loyal"),
    ("41", "Promising"),
    ("51", "New customers"),
    ("[4-5][2-3]", "Potential loyalists"),
    ("5[4-5]", "Champions"),
)


def rfm_segment(r: int, f: int) -> str:
    """The segment of an R and F score (1–5 each)."""
    key = f"{r}{f}"
    for pattern, name in RFM_SEGMENTS:
        if re.fullmatch(pattern, key):
            return name
    raise ValueError(f"scores out of range: R={r} F={f}")


@dataclass(frozen=True)
class OrdersQuery:
    """Which orders to look at."""

    workspace_id: str = "default"
    purchase_events: tuple[str, ...] = DEFAULT_PURCHASE_EVENTS
    since: datetime | None = None
    until: datetime | None = None
    filters: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class RepeatPurchase:
    customers: int
    repeat_customers: int
    orders: int
    revenue: Decimal
    gaps: int
    median_gap_seconds: float | None
    mean_gap_seconds: float | None
    median_seconds_to_second_order: float | None
    gap_buckets: tuple[tuple[str, int], ...]

    @property
    def rate(self) -> float | None:
        return self.repeat_customers / self.customers if self.customers else None

    def to_dict(self) -> dict[str, Any]:
        def days(seconds: float | None) -> float | None:
            return None if seconds is None else round(seconds / DAY, 2)

        return {
            "customers": self.customers,
            "repeat_customers": self.repeat_customers,
            "repeat_purchase_rate": self.rate,
            "orders": self.orders,
            "revenue": str(self.revenue),
            "gaps": self.gaps,
            "median_days_between_orders": days(self.median_gap_seconds),
            "mean_days_between_orders": days(self.mean_gap_seconds),
            "median_days_to_second_order": days(self.median_seconds_to_second_order),
            "gap_buckets": dict(self.gap_buckets),
        }


@dataclass(frozen=True)
class RfmScore:
    person_id: str
    last_order: datetime
    recency: timedelta
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int

    @property
    def segment(self) -> str:
        return rfm_segment(self.r, self.f)

    @property
    def score(self) -> str:
        return f"{self.r}{self.f}{self.m}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "last_order": self.last_order.isoformat(),
            "recency_days": round(self.recency.total_seconds() / DAY, 2),
            "frequency": self.frequency,
            "monetary": str(self.monetary),
            "r": self.r,
            "f": self.f,
            "m": self.m,
            "segment": self.segment,
        }


@dataclass(frozen=True)
class RfmSegment:
    name: str
    customers: int
    share: float
    revenue: Decimal


@dataclass(frozen=True)
class RfmResult:
    as_of: datetime
    customers: tuple[RfmScore, ...]

    def segments(self) -> tuple[RfmSegment, ...]:
        """Customers and revenue per segment, largest first."""
        count: dict[str, int] = {}
        money: dict[str, Decimal] = {}
        for c in self.customers:
            count[c.segment] = count.get(c.segment, 0) + 1
            money[c.segment] = money.get(c.segment, Decimal(0)) + c.monetary
        total = len(self.customers)
        return tuple(
            RfmSegment(name, n, n / total, money[name])
            for name, n in sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))
        )

    def top(self, n: int, segment: str | None = None) -> tuple[RfmScore, ...]:
        """The ``n`` customers with the most revenue (ties by id), of one segment if given."""
        chosen = (c for c in self.customers if segment is None or c.segment == segment)
        return tuple(sorted(chosen, key=lambda c: (-c.monetary, c.person_id))[:n])

    def to_dict(self, *, customers: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "as_of": self.as_of.isoformat(),
            "segments": [
                {
                    "name": s.name,
                    "customers": s.customers,
                    "share": s.share,
                    "revenue": str(s.revenue),
                }
                for s in self.segments()
            ],
        }
        if customers:
            out["customers"] = [c.to_dict() for c in self.customers]
        return out


def validate(q: OrdersQuery) -> OrdersQuery:
    if not q.purchase_events:
        raise InputError("name at least one purchase event", field="purchase_events")
    date_range_sql(q.since, q.until)
    return q


def _orders_sql(q: OrdersQuery, p: Params, dialect: str) -> str:
    where = events_where_sql(
        p,
        workspace_id=q.workspace_id,
        since=q.since,
        until=q.until,
        filters=q.filters,
        dialect=dialect,
    )
    return (
        'SELECT person_id, "timestamp" AS ts, event, message_id, coalesce(revenue, 0) AS revenue '
        f"FROM events WHERE {where} AND {in_list_sql(p, 'event', q.purchase_events)}"
    )


def repeat_purchase_query(q: OrdersQuery, dialect: str = "duckdb") -> CompiledQuery:
    """SQL of one row: customers, repeat customers, orders, revenue, gaps, median gap, mean
    gap, median time to the second order, then one count per gap bucket."""
    p = Params()
    buckets = []
    for _label, lo, hi in GAP_BUCKETS:
        cond = f"ts >= prev_ts + INTERVAL '{lo} days'"
        if hi is not None:
            cond += f" AND ts < prev_ts + INTERVAL '{hi} days'"
        buckets.append(f"count(*) FILTER (WHERE {cond})")
    sql = f"""
WITH orders AS (
    SELECT person_id, ts, revenue,
        lag(ts) OVER (PARTITION BY person_id ORDER BY ts, event, message_id) AS prev_ts,
        row_number() OVER (PARTITION BY person_id ORDER BY ts, event, message_id) AS k
    FROM ({_orders_sql(q, p, dialect)}) AS _o
),
per_customer AS (
    SELECT person_id, count(*) AS n FROM orders GROUP BY person_id
)
SELECT
    (SELECT count(*) FROM per_customer),
    (SELECT count(*) FROM per_customer WHERE n >= 2),
    count(*),
    sum(revenue),
    count(prev_ts),
    median(epoch(ts) - epoch(prev_ts)),
    avg(epoch(ts) - epoch(prev_ts)),
    median(epoch(ts) - epoch(prev_ts)) FILTER (WHERE k = 2),
    {", ".join(buckets)}
FROM orders
"""
    return p.compile(sql)


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def repeat_purchase(backend: Backend, q: OrdersQuery | None = None) -> RepeatPurchase:
    """Repeat-purchase rate and time between orders (see the module docstring)."""
    q = validate(q or OrdersQuery())
    cq = repeat_purchase_query(q, backend.dialect)
    row = backend.fetch(cq.sql, cq.params)[0]
    customers, repeat, orders, revenue, gaps, median, mean, second = row[:8]
    return RepeatPurchase(
        customers=int(customers),
        repeat_customers=int(repeat),
        orders=int(orders),
        revenue=Decimal(revenue or 0).quantize(CENT),
        gaps=int(gaps),
        median_gap_seconds=_seconds(median),
        mean_gap_seconds=_seconds(mean),
        median_seconds_to_second_order=_seconds(second),
        gap_buckets=tuple(
            (label, int(n)) for (label, _lo, _hi), n in zip(GAP_BUCKETS, row[8:], strict=True)
        ),
    )


def rfm_query(q: OrdersQuery, dialect: str = "duckdb") -> CompiledQuery:
    """SQL of one row per customer: person, last order, frequency, monetary, R, F, M."""
    p = Params()

    def score(order_by: str) -> str:
        # Integer arithmetic: ties share rank() and so the score; see the module docstring.
        return f"1 + (5 * (rank() OVER (ORDER BY {order_by}) - 1)) // count(*) OVER ()"

    sql = f"""
WITH per_customer AS (
    SELECT person_id, max(ts) AS last_order, count(*) AS frequency, sum(revenue) AS monetary
    FROM ({_orders_sql(q, p, dialect)}) AS _o
    GROUP BY person_id
)
SELECT person_id, last_order, frequency, monetary,
    {score("last_order")} AS r,
    {score("frequency")} AS f,
    {score("monetary")} AS m
FROM per_customer
ORDER BY person_id
"""
    return p.compile(sql)


def rfm(backend: Backend, q: OrdersQuery | None = None, *, now: datetime) -> RfmResult:
    """RFM quintile scores of every customer (see the module docstring), by person_id."""
    q = validate(q or OrdersQuery())
    as_of = q.until.astimezone(UTC) if q.until is not None else require_aware(now)
    cq = rfm_query(q, backend.dialect)
    customers = []
    for person, last, frequency, monetary, r, f, m in backend.fetch(cq.sql, cq.params):
        last = last.astimezone(UTC)
        customers.append(
            RfmScore(
                person_id=person,
                last_order=last,
                recency=as_of - last,
                frequency=int(frequency),
                monetary=Decimal(monetary).quantize(CENT),
                r=int(r),
                f=int(f),
                m=int(m),
            )
        )
    return RfmResult(as_of, tuple(customers))
