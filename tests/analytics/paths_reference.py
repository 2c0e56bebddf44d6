"""Brute-force reference implementations of the journey analytics, in plain Python.

Each function restates a definition from the module docstrings of :mod:`wayline.analytics`
as directly as possible (loops over rows, no SQL), so that the SQL builders can be checked
against it on random logs.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

Row = dict[str, Any]


def sessions(rows: Sequence[Row], gap: timedelta = timedelta(minutes=30)) -> dict[str, str]:
    """message_id → session_key, following :mod:`wayline.analytics.sessions`."""
    out: dict[str, str] = {}
    inferred: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r["session_id"] is not None:
            out[r["message_id"]] = "s:" + r["session_id"]
        else:
            inferred[r["person_id"]].append(r)
    for person_rows in inferred.values():
        person_rows.sort(key=lambda r: r["timestamp"])
        n = 0
        prev = None
        for r in person_rows:
            if prev is None or r["timestamp"] - prev > gap:
                n += 1
            prev = r["timestamp"]
            out[r["message_id"]] = f"i:{n}"
    return out


PATH_START, PATH_END = "path_start", "path_end"


def _full_match(pattern: str, text: str) -> bool:
    import re

    return re.fullmatch(pattern, text) is not None


def _passes(f: Any, r: Row) -> bool:
    """The one filter shape the random queries use: a column ``neq`` a value (missing passes)."""
    assert f.op == "neq", f
    return r[f.key] is None or r[f.key] != f.value


def sequences(rows: Sequence[Row], q: Any) -> dict[tuple[str, str], list[tuple[str, Any, Any]]]:
    """(person, unit) → [(item, gap_seconds_into_it or None, row)] after naming, exclusion and
    collapsing, per the paths module docstring."""
    rows = [
        r
        for r in rows
        if r["workspace_id"] == q.workspace_id
        and (q.since is None or r["timestamp"] >= q.since)
        and (q.until is None or r["timestamp"] < q.until)
        and all(_passes(f, r) for f in q.filters)
    ]
    keys = sessions(rows, q.session_gap) if q.by == "session" else {}
    units: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        units[(r["person_id"], keys.get(r["message_id"], ""))].append(r)
    out = {}
    for key, unit_rows in units.items():

        def raw_item(r: Row) -> str:
            if q.item == "event_or_page" and r["event"] in ("$page", "$screen") and r["page_path"]:
                return str(r["page_path"])
            return str(r["event"])

        unit_rows.sort(key=lambda r: (r["timestamp"], raw_item(r)))
        named = []
        for r in unit_rows:
            raw = raw_item(r)
            item = next((g.name for g in q.groups if _full_match(g.pattern, raw)), raw)
            if raw in q.exclude or item in q.exclude:
                continue
            named.append((item, r))
        seq: list[tuple[str, Any, Any]] = []
        prev = None
        for item, r in named:
            gap = None if prev is None else (r["timestamp"] - prev["timestamp"]).total_seconds()
            if q.collapse_repeats and seq and seq[-1][0] == item:
                prev = r
                continue
            seq.append((item, gap, r))
            prev = r
        if seq:
            out[key] = seq
    return out


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def transitions(rows: Sequence[Row], q: Any) -> dict[tuple[str, str], tuple[int, int, float, Any]]:
    """(source, target) → (count, persons, share, median seconds)."""
    pairs: dict[tuple[str, str], list[tuple[str, Any]]] = defaultdict(list)
    for (person, _unit), seq in sequences(rows, q).items():
        pairs[(PATH_START, seq[0][0])].append((person, None))
        for (a, _g, _r), (b, gap, _r2) in itertools.pairwise(seq):
            pairs[(a, b)].append((person, gap))
        pairs[(seq[-1][0], PATH_END)].append((person, None))
    out_total: dict[str, int] = defaultdict(int)
    for (a, _b), lst in pairs.items():
        out_total[a] += len(lst)
    result = {}
    for (a, b), lst in pairs.items():
        gaps = [g for _p, g in lst if g is not None]
        med = _median(gaps)
        result[(a, b)] = (
            len(lst),
            len({p for p, _ in lst}),
            len(lst) / out_total[a],
            None if med is None else round(med, 3),
        )
    return result


def windows(rows: Sequence[Row], q: Any) -> dict[tuple[str, str], list[tuple[int, str, Any]]]:
    """(person, unit) → the prefixed/suffixed window as [(step, item, gap into it)]."""
    out = {}
    for key, seq in sequences(rows, q).items():
        items = [s[0] for s in seq]
        n = len(items)
        if q.start is not None and q.end is None:
            if q.start not in items:
                continue
            a = items.index(q.start)
            lo, hi, first_step = a, min(n, a + q.steps), 1
        elif q.start is None and q.end is not None:
            if q.end not in items:
                continue
            b = items.index(q.end)
            lo, hi = max(0, b - q.steps + 1), b + 1
            first_step = -(b - lo)
        elif q.start is not None and q.end is not None:
            if q.start not in items:
                continue
            a = items.index(q.start)
            later = [i for i in range(a + 1, n) if items[i] == q.end]
            if not later:
                continue
            lo, hi, first_step = a, min(later[0] + 1, a + q.steps), 1
        else:
            lo, hi, first_step = 0, min(n, q.steps), 1
        win: list[tuple[int, str, Any]] = []
        if lo == 0:
            win.append((first_step - 1, PATH_START, None))
        for i in range(lo, hi):
            win.append((first_step + i - lo, items[i], seq[i][1] if i > lo else None))
        if hi == n:
            win.append((win[-1][0] + 1, PATH_END, None))
        out[key] = win
    return out


def sankey(rows: Sequence[Row], q: Any) -> tuple[dict[tuple[str, str], tuple[Any, ...]], int]:
    """All links ("step_item" → "step_item") → (value, persons, share, median) and the number
    of units with a window (before any edge limit)."""
    wins = windows(rows, q)
    pairs: dict[tuple[str, str], list[tuple[str, Any]]] = defaultdict(list)
    for (person, _u), win in wins.items():
        for (s1, a, _), (s2, b, gap) in itertools.pairwise(win):
            pairs[(f"{s1}_{a}", f"{s2}_{b}")].append((person, gap if a != PATH_START else None))
    out_total: dict[str, int] = defaultdict(int)
    for (a, _b), lst in pairs.items():
        out_total[a] += len(lst)
    links = {}
    for (a, b), lst in pairs.items():
        med = _median([g for _p, g in lst if g is not None])
        links[(a, b)] = (
            len(lst),
            len({p for p, _ in lst}),
            len(lst) / out_total[a],
            None if med is None else round(med, 3),
        )
    return links, len(wins)


def top_paths(rows: Sequence[Row], q: Any) -> dict[tuple[str, ...], tuple[int, int]]:
    """Every path variant → (count, persons)."""
    variants: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for (person, _u), win in windows(rows, q).items():
        variants[tuple(item for _s, item, _g in win)].append(person)
    return {k: (len(v), len(set(v))) for k, v in variants.items()}


# --- retention, customer value, lifecycle ----------------------------------------------------


def period_start(ts: Any, period: str) -> Any:
    from datetime import UTC

    day = ts.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def nth_period(start: Any, n: int, period: str) -> Any:
    if period == "day":
        return start + timedelta(days=n)
    if period == "week":
        return start + timedelta(days=7 * n)
    m = start.month - 1 + n
    return start.replace(year=start.year + m // 12, month=m % 12 + 1)


def retention(rows: Sequence[Row], q: Any, now: Any) -> dict[Any, tuple[int, tuple[int, ...]]]:
    """cohort start → (size, retained per period), straight from the definition."""
    end = min(now, q.until) if q.until else now
    rows = [r for r in rows if r["workspace_id"] == q.workspace_id]
    if q.cohort == "first_purchase":
        cohort_rows = [r for r in rows if r["event"] in q.purchase_events]
    else:
        cohort_rows = rows
    returns = q.return_events
    if returns is None:
        returns = q.purchase_events if q.cohort == "first_purchase" else None
    first: dict[str, Any] = {}
    for r in cohort_rows:
        if r["person_id"] not in first or r["timestamp"] < first[r["person_id"]]:
            first[r["person_id"]] = r["timestamp"]
    cohorts: dict[Any, set[str]] = defaultdict(set)
    for person, ts in first.items():
        start = period_start(ts, q.period)
        if q.since is not None and start < period_start(q.since, q.period):
            continue
        if start >= end:
            continue
        cohorts[start].add(person)
    out = {}
    for start, people in cohorts.items():
        retained = []
        n = 0
        while n < q.periods and nth_period(start, n, q.period) < end:
            lo, hi = nth_period(start, n, q.period), nth_period(start, n + 1, q.period)
            back = {
                r["person_id"]
                for r in rows
                if r["person_id"] in people
                and (returns is None or r["event"] in returns)
                and lo <= r["timestamp"] < hi
                and r["timestamp"] < end
            }
            retained.append(len(back))
            n += 1
        out[start] = (len(people), tuple(retained))
    return out


def _orders(rows: Sequence[Row], q: Any) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if (
            r["workspace_id"] == q.workspace_id
            and r["event"] in q.purchase_events
            and (q.since is None or r["timestamp"] >= q.since)
            and (q.until is None or r["timestamp"] < q.until)
        ):
            out[r["person_id"]].append(r)
    for lst in out.values():
        lst.sort(key=lambda r: (r["timestamp"], r["event"], r["message_id"]))
    return out


def repeat_purchase(rows: Sequence[Row], q: Any) -> dict[str, Any]:
    from decimal import Decimal

    orders = _orders(rows, q)
    gaps = []
    seconds = []
    for lst in orders.values():
        for a, b in itertools.pairwise(lst):
            gaps.append(b["timestamp"] - a["timestamp"])
        if len(lst) >= 2:
            seconds.append((lst[1]["timestamp"] - lst[0]["timestamp"]).total_seconds())
    secs = [g.total_seconds() for g in gaps]
    buckets = [(0, 7), (7, 30), (30, 60), (60, 90), (90, 180), (180, None)]
    med, med2 = _median(secs), _median(seconds)
    return {
        "customers": len(orders),
        "repeat_customers": sum(1 for lst in orders.values() if len(lst) >= 2),
        "orders": sum(len(lst) for lst in orders.values()),
        "revenue": sum(
            (r["revenue"] or Decimal(0) for lst in orders.values() for r in lst), Decimal(0)
        ),
        "gaps": len(gaps),
        "median": None if med is None else round(med, 3),
        "mean": round(sum(secs) / len(secs), 3) if secs else None,
        "second": None if med2 is None else round(med2, 3),
        "buckets": tuple(
            sum(
                1
                for g in gaps
                if timedelta(days=lo) <= g and (hi is None or g < timedelta(days=hi))
            )
            for lo, hi in buckets
        ),
    }


def rfm(rows: Sequence[Row], q: Any) -> dict[str, tuple[int, int, int]]:
    """person → (R, F, M) scores by the quintile rule with ties sharing the lower score."""
    from decimal import Decimal

    orders = _orders(rows, q)
    values = {
        p: (
            max(r["timestamp"] for r in lst),
            len(lst),
            sum((r["revenue"] or Decimal(0) for r in lst), Decimal(0)),
        )
        for p, lst in orders.items()
    }
    n = len(values)

    def score(i: int, v: Any) -> int:
        worse = sum(1 for other in values.values() if other[i] < v)
        return 1 + (5 * worse) // n

    return {p: (score(0, v[0]), score(1, v[1]), score(2, v[2])) for p, v in values.items()}


def lifecycle(rows: Sequence[Row], q: Any, now: Any) -> dict[Any, tuple[int, int, int, int]]:
    """period start → (new, returning, resurrecting, dormant), from the definition."""
    end = min(now, q.until) if q.until else now
    active: dict[str, set[Any]] = defaultdict(set)
    for r in rows:
        if (
            r["workspace_id"] == q.workspace_id
            and r["timestamp"] < end
            and (q.events is None or r["event"] in q.events)
        ):
            active[r["person_id"]].add(period_start(r["timestamp"], q.period))
    if q.since is not None:
        start = period_start(q.since, q.period)
    else:
        every = [p for ps in active.values() for p in ps]
        if not every:
            return {}
        start = min(every)
    out = {}
    while start < end:
        prev = nth_period(start, -1, q.period)
        counts = [0, 0, 0, 0]
        for periods in active.values():
            if start in periods:
                if min(periods) == start:
                    counts[0] += 1
                elif prev in periods:
                    counts[1] += 1
                else:
                    counts[2] += 1
            elif prev in periods:
                counts[3] += 1
        out[start] = tuple(counts)
        start = nth_period(start, 1, q.period)
    return out
