"""Incidents: a funnel step whose conversion drops for a few days compared with the rest of the
period (a payment provider's outage, a broken deploy).

Per funnel step, the visits at the step and those that went on to the next step are counted per
UTC day (of the visit's first event at the step). Every window of 1 to 14 consecutive days (at
most a quarter of the period) is compared with all other days by a two-proportion z-test; the
Bonferroni guard counts every window of every step. The most significant window that passes
the thresholds is reported, its days are set aside, and the scan runs once more for a second
incident on the same step. Revenue at stake: visits lost in the window against the rest's rate
× the store's rate from the next step to a purchase × average order value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from wayline.journeymap.detectors.base import FUNNEL, Evidence, Finding, StoreView
from wayline.journeymap.detectors.segment_step import money, to_purchase
from wayline.journeymap.detectors.stats import (
    Comparison,
    Thresholds,
    critical_z,
    is_finding,
)
from wayline.journeymap.detectors.visits import DayCount, cube, daily, steps

KIND = "incident"
MAX_WINDOW_DAYS = 14
ROUNDS = 2


@dataclass(frozen=True)
class Window:
    first: date
    last: date
    """Inclusive."""
    comparison: Comparison
    persons: int


def windows_tested(days: int) -> int:
    longest = max(1, min(MAX_WINDOW_DAYS, days // 4))
    return sum(max(0, days - length + 1) for length in range(1, longest + 1))


def scan_days(
    counts: Sequence[DayCount], thresholds: Thresholds, z_crit: float, period_days: int
) -> list[Window]:
    """Pure: the windows of days whose step conversion is significantly lower than the rest."""
    by_day = {c.day: c for c in counts}
    if not by_day:
        return []
    first, last = min(by_day), max(by_day)
    days = [first + timedelta(d) for d in range((last - first).days + 1)]
    longest = max(1, min(MAX_WINDOW_DAYS, period_days // 4))
    excluded: set[date] = set()
    found: list[Window] = []
    for _ in range(ROUNDS):
        n_all = sum(c.n for d, c in by_day.items() if d not in excluded)
        k_all = sum(c.k for d, c in by_day.items() if d not in excluded)
        best: Window | None = None
        for start in range(len(days)):
            n = k = persons = 0
            for length in range(1, longest + 1):
                end = start + length - 1
                if end >= len(days) or days[end] in excluded:
                    break
                day = by_day.get(days[end])
                if day is not None:
                    n, k, persons = n + day.n, k + day.k, persons + day.persons
                cmp = Comparison(k, n, k_all - k, n_all - n)
                if not is_finding(cmp, z_crit, "lower", thresholds):
                    continue
                if best is None or cmp.z < best.comparison.z:
                    best = Window(days[start], days[end], cmp, persons)
        if best is None:
            break
        found.append(best)
        excluded |= {best.first + timedelta(d) for d in range((best.last - best.first).days + 1)}
    return found


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=UTC)


def detect(view: StoreView) -> list[Finding]:
    c = view.context
    prof = view.profile
    pairs = steps(view)
    if not pairs:
        return []
    period_days = max(1, (c.until - c.since).days)
    z_crit = critical_z(
        c.thresholds.alpha, len(pairs) * ROUNDS * max(1, windows_tested(period_days))
    )
    counts = daily(view)
    cells = cube(view)
    found = []
    for i, j in pairs:
        a, b = prof.main_name(FUNNEL[i - 1]), prof.main_name(FUNNEL[j - 1])
        series = [x for x in counts if x.step == (i, j)]
        for w in scan_days(series, c.thresholds, z_crit, period_days):
            cmp = w.comparison
            since = max(c.since, _midnight(w.first))
            until = min(c.until, _midnight(w.last) + timedelta(days=1))
            days = (w.last - w.first).days + 1
            found.append(
                Finding(
                    kind=KIND,
                    title=f"{a} → {b} broke down for {days} day{'s' if days > 1 else ''} "
                    f"from {w.first.isoformat()}",
                    stage=c.mapping.classify(b).stage,
                    step=f"{a} → {b}",
                    step_events=(a, b),
                    effect=1 - cmp.ratio,
                    evidence=Evidence(
                        metric=f"share of visits with {a} that reach {b}",
                        value=cmp.rate,
                        baseline=cmp.baseline,
                        unit="visits",
                        affected_customers=w.persons,
                        revenue_at_stake=money(
                            cmp.excess("lower") * to_purchase(cells, j), prof.average_order_value
                        ),
                        since=since,
                        until=until,
                        segment={},
                        detail=(
                            f"From {w.first.isoformat()} to {w.last.isoformat()} "
                            f"{cmp.k_a} of {cmp.n_a} visits went on from {a} to {b} "
                            f"({cmp.rate:.1%}), against {cmp.baseline:.1%} on the other days."
                        ),
                        z_score=cmp.z,
                        sample_size=cmp.n_a,
                    ),
                )
            )
    return found
