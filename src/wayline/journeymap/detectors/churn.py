"""Customers who never come back after a bad experience: a late delivery, a refund, a support
contact, an error.

Two shapes, both per customer, both comparing like with like in time:

- **Late delivery.** Delivery events (role ``delivery``) carrying a lateness property — a
  boolean whose name mentions lateness or delay (``late``, ``delivered_late``…) or a number
  (``days_late``, ``delay_days``…) where above 0 means late. Customers whose first delivery
  after their first purchase was late are compared with those whose first delivery was on time:
  the share who buy again after that delivery. Both groups start their clock at the same kind of
  moment, so neither has more time left to come back.
- **Refund, support contact, error** (roles ``refund``, ``support``, error roles). Buyers whose
  first purchase was followed within 30 days by such an event are compared with buyers whose
  first purchase was not: the share who buy again *after* those 30 days, among buyers whose
  first purchase leaves at least 60 days of data after it.

Revenue at stake: the customers missing against the baseline's repeat rate × average order
value (one order each: a floor, since a returning customer often buys more than once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from wayline.analytics.filters import json_text_sql
from wayline.analytics.query import CompiledQuery, Params
from wayline.journeymap.detectors.base import (
    ERROR_ROLES,
    SAFE_KEY,
    Evidence,
    Finding,
    StoreView,
    in_list,
)
from wayline.journeymap.detectors.segment_step import money
from wayline.journeymap.detectors.stats import Comparison, critical_z, is_finding

KIND = "churn_after_bad_experience"
EXPOSURE = timedelta(days=30)
FOLLOW_UP = timedelta(days=30)
SAMPLE = 2000


@dataclass(frozen=True)
class Lateness:
    key: str
    numeric: bool


def lateness_key(samples: Sequence[Any]) -> Lateness | None:
    """Pure: the lateness property sampled delivery events carry, if any (a flag preferred)."""
    seen: dict[str, list[Any]] = {}
    for text in samples:
        try:
            obj = orjson.loads(text) if isinstance(text, str | bytes) else text
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            for k, v in obj.items():
                if v is not None and SAFE_KEY.match(str(k)):
                    seen.setdefault(str(k), []).append(v)
    flags, numbers = [], []
    for key, values in sorted(seen.items()):
        low = key.lower()
        if not ("late" in low or "delay" in low):
            continue
        if all(isinstance(v, bool) for v in values):
            flags.append(key)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            numbers.append(key)
    if flags:
        return Lateness(sorted(flags, key=len)[0], numeric=False)
    if numbers:
        return Lateness(sorted(numbers, key=len)[0], numeric=True)
    return None


def _buyers(view: StoreView, p: Params) -> str:
    buy = in_list(p, "event", view.profile.names("purchase"))
    return (
        "SELECT person_id, min(timestamp) AS first_buy, max(timestamp) AS last_buy "
        f"FROM events WHERE {view.where(p)} AND {buy} GROUP BY person_id"
    )


def delivery_query(view: StoreView, late: Lateness) -> CompiledQuery:
    """(late, customers, customers who bought again after that delivery)."""
    p = Params()
    text = json_text_sql("e.properties", (late.key,), view.dialect)
    bad = (
        f"CASE WHEN {text} IS NULL THEN NULL WHEN CAST({text} AS DOUBLE) > 0 THEN 1 ELSE 0 END"
        if late.numeric
        else f"CASE WHEN lower({text}) = 'true' THEN 1 WHEN lower({text}) = 'false' THEN 0 END"
    )
    deliveries = in_list(p, "event", view.profile.names("delivery"))
    events = (
        f"(SELECT person_id, timestamp, properties FROM events "
        f"WHERE {view.where(p)} AND {deliveries})"
    )
    sql = f"""
        WITH b AS ({_buyers(view, p)}),
             d AS (SELECT e.person_id, e.timestamp AS ts, {bad} AS bad,
                          row_number() OVER (PARTITION BY e.person_id
                                             ORDER BY e.timestamp) AS n
                   FROM {events} e JOIN b ON b.person_id = e.person_id
                   WHERE e.timestamp >= b.first_buy)
        SELECT d.bad, count(*), sum(CASE WHEN b.last_buy > d.ts THEN 1 ELSE 0 END)
        FROM d JOIN b ON b.person_id = d.person_id
        WHERE d.n = 1 AND d.bad IS NOT NULL
        GROUP BY 1"""
    return p.compile(sql)


def exposures_query(view: StoreView, groups: Sequence[Sequence[str]]) -> CompiledQuery:
    """Per group of roles *i*: ``(i, exposed, buyers, buyers who bought again after the
    exposure window)``. One statement for every experience: the buyers are found, and the
    events joined to them, once rather than once per experience (four reads of the events
    were a quarter of the detector's time)."""
    p = Params()
    c = view.context
    names = [view.profile.names(*roles) for roles in groups]
    every = in_list(p, "event", sorted({n for group in names for n in group}))
    flags = ", ".join(
        f"max(CASE WHEN {in_list(p, 'e.event', group)} THEN 1 ELSE 0 END) AS x{i}"
        for i, group in enumerate(names)
    )
    latest_first = c.until - EXPOSURE - FOLLOW_UP
    events = f"(SELECT person_id, timestamp, event FROM events WHERE {view.where(p)} AND {every})"
    again = f"b.last_buy >= b.first_buy + INTERVAL {EXPOSURE.days} DAY"
    parts = [
        f"SELECT {i}, CASE WHEN x.x{i} = 1 THEN 1 ELSE 0 END, count(*), "
        f"sum(CASE WHEN {again} THEN 1 ELSE 0 END) "
        "FROM b LEFT JOIN x ON x.person_id = b.person_id "
        f"WHERE b.first_buy < {p(latest_first)} GROUP BY 1, 2"
        for i in range(len(names))
    ]
    sql = f"""
        WITH b AS MATERIALIZED ({_buyers(view, p)}),
             x AS MATERIALIZED (
                SELECT e.person_id, {flags}
                FROM {events} e JOIN b ON b.person_id = e.person_id
                WHERE e.timestamp >= b.first_buy
                  AND e.timestamp < b.first_buy + INTERVAL {EXPOSURE.days} DAY
                GROUP BY e.person_id)
        {" UNION ALL ".join(parts)}"""
    return p.compile(sql)


def exposure_query(view: StoreView, roles: Sequence[str]) -> CompiledQuery:
    """(0, exposed, buyers, buyers who bought again after the exposure window)."""
    return exposures_query(view, [roles])


def comparison(rows: Sequence[tuple[Any, ...]]) -> Comparison:
    """Pure: rows (flag, customers, came back) → exposed (flag 1) against the others."""
    by = {int(r[0]): (int(r[2] or 0), int(r[1])) for r in rows if r[0] is not None}
    k_a, n_a = by.get(1, (0, 0))
    k_b, n_b = by.get(0, (0, 0))
    return Comparison(k_a, n_a, k_b, n_b)


@dataclass(frozen=True)
class Experience:
    name: str
    roles: tuple[str, ...]


EXPERIENCES = (
    Experience("a refund", ("refund",)),
    Experience("a support contact", ("support",)),
    Experience("an error", ERROR_ROLES),
)


def detect(view: StoreView) -> list[Finding]:
    prof = view.profile
    if not prof.has("purchase"):
        return []
    c = view.context
    tests: list[tuple[str, str, dict[str, str], str, Comparison]] = []
    if prof.has("delivery"):
        p = Params()
        deliveries = in_list(p, "event", prof.names("delivery"))
        samples = view.fetch(
            p.compile(
                f"SELECT CAST(properties AS VARCHAR) FROM events WHERE {view.where(p)} AND "
                f"{deliveries} AND properties IS NOT NULL LIMIT {SAMPLE}"
            )
        )
        late = lateness_key([r[0] for r in samples])
        if late is not None:
            cmp = comparison(view.fetch(delivery_query(view, late)))
            seg_value = "> 0" if late.numeric else "true"
            tests.append(
                (
                    "a late delivery",
                    prof.main_name("delivery"),
                    {f"properties.{late.key}": seg_value},
                    f"share of customers whose first delivery was late ({late.key} {seg_value})"
                    " who buy again after it",
                    cmp,
                )
            )
    if c.until - c.since > EXPOSURE + FOLLOW_UP:
        present = [exp for exp in EXPERIENCES if any(prof.has(r) for r in exp.roles)]
        rows = view.fetch(exposures_query(view, [e.roles for e in present])) if present else []
        for i, exp in enumerate(present):
            cmp = comparison([r[1:] for r in rows if int(r[0]) == i])
            names = ", ".join(prof.names(*exp.roles))
            tests.append(
                (
                    exp.name,
                    prof.main_name(max(exp.roles, key=lambda r: len(prof.names(r)))),
                    {"event": names},
                    f"share of buyers with {exp.name} ({names}) within {EXPOSURE.days} days of "
                    "their first order who buy again later",
                    cmp,
                )
            )
    z_crit = critical_z(c.thresholds.alpha, max(1, len(tests)))
    buy = prof.main_name("purchase")
    found = []
    for name, event, segment, metric, cmp in tests:
        if not is_finding(cmp, z_crit, "lower", c.thresholds):
            continue
        found.append(
            Finding(
                kind=KIND,
                title=f"Customers do not come back after {name}",
                stage="retention",
                step=f"{event} → {buy}",
                step_events=(event, buy),
                effect=1 - cmp.ratio,
                evidence=Evidence(
                    metric=metric,
                    value=cmp.rate,
                    baseline=cmp.baseline,
                    unit="customers",
                    affected_customers=cmp.n_a,
                    revenue_at_stake=money(cmp.excess("lower"), prof.average_order_value),
                    since=c.since,
                    until=c.until,
                    segment=segment,
                    detail=(
                        f"{cmp.k_a} of {cmp.n_a} customers bought again after {name} "
                        f"({cmp.rate:.0%}), against {cmp.baseline:.0%} of the {cmp.n_b} others."
                    ),
                    z_score=cmp.z,
                    sample_size=cmp.n_a,
                ),
            )
        )
    return found
