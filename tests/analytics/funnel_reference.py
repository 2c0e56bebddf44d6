"""A brute-force funnel, in plain Python, restating the definitions of
:mod:`wayline.analytics.funnels` as directly as possible: every ordered chain is enumerated,
every strict or any-order attempt walked step by step; no greedy, no merging, no SQL. The SQL is
checked against it on random logs.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from paths_reference import sessions

from wayline.analytics.filters import (
    EVENT_KEY_COLUMNS,
    PropertyFilter,
    resolve_breakdown,
    resolve_key,
)
from wayline.analytics.funnels import BOOKKEEPING_EVENTS, FunnelQuery, validate

Row = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# One reference step result: (users, median, p90, median from start, p90 from start).
StepRef = tuple[int, float | None, float | None, float | None, float | None]


def _us(ts: datetime) -> int:
    delta = ts - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def value_of(row: Row, key: str) -> str | None:
    """The key's value on an event row as text, as :func:`filters.value_sql` reads it."""
    resolved = resolve_key(key)
    if not resolved.is_json:
        v = row.get(resolved.column)
        if v is None:
            return None
        if isinstance(v, Decimal):
            return str(v)
        return str(v)
    doc = row.get(resolved.column)
    if isinstance(doc, str):
        doc = json.loads(doc)
    for part in resolved.path:
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return _json_text(doc)


def _as_number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def passes(row: Row, f: PropertyFilter) -> bool:
    v = value_of(row, f.key)
    resolved = resolve_key(f.key)
    if f.op == "is_set":
        return v is not None
    if f.op == "is_not_set":
        return v is None
    if f.op in ("gt", "gte", "lt", "lte"):
        x = _as_number(v)
        if x is None:
            return False
        y = float(f.value)  # type: ignore[arg-type]
        return {"gt": x > y, "gte": x >= y, "lt": x < y, "lte": x <= y}[f.op]
    if f.op in ("in", "not_in"):
        values = {_text(x) for x in f.value}  # type: ignore[union-attr]
        if v is None:
            return f.op == "not_in"
        return (v in values) == (f.op == "in")
    if not resolved.is_json and resolved.column == "revenue":
        if v is None:
            return f.op != "eq"
        same = Decimal(v) == Decimal(_text(f.value))
        return same if f.op == "eq" else not same
    text = _text(f.value)
    if v is None:
        return f.op in ("neq", "not_contains")
    return {
        "eq": v == text,
        "neq": v != text,
        "contains": text in v,
        "not_contains": text not in v,
    }[f.op]


def _matches(row: Row, events: Sequence[str], filters: Sequence[PropertyFilter]) -> bool:
    return row["event"] in events and all(passes(row, f) for f in filters)


def percentile_cont(values: list[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _latest_traits(rows: Sequence[Row], workspace: str, path: Sequence[str]) -> dict[str, str]:
    best: dict[str, tuple[datetime, str]] = {}
    for r in rows:
        if r["workspace_id"] != workspace or r["event"] != "$identify":
            continue
        doc: Any = r.get("traits")
        if isinstance(doc, str):
            doc = json.loads(doc)
        for part in path:
            doc = doc.get(part) if isinstance(doc, dict) else None
        v = _json_text(doc)
        if v is None:
            continue
        cur = best.get(r["person_id"])
        if cur is None or (r["timestamp"], v) > cur:
            best[r["person_id"]] = (r["timestamp"], v)
    return {p: v for p, (_, v) in best.items()}


def _cohorts(rows: Sequence[Row], workspace: str) -> dict[str, str]:
    first: dict[str, datetime] = {}
    for r in rows:
        if r["workspace_id"] == workspace:
            p = r["person_id"]
            first[p] = min(first.get(p, r["timestamp"]), r["timestamp"])
    return {p: ts.astimezone(UTC).strftime("%Y-%m") for p, ts in first.items()}


def funnel(
    rows: Sequence[Row], query: FunnelQuery
) -> tuple[list[StepRef], dict[str | None, list[StepRef]], dict[Any, int]]:
    """(total per step, per breakdown value per step, furthest step per unit)."""
    q = validate(query)
    n = len(q.steps)
    w = None if q.window is None else q.window.total_seconds() * 1_000_000
    session_of = sessions(rows) if q.by == "session" else {}
    scope = [
        r
        for r in rows
        if r["workspace_id"] == q.workspace_id
        and (q.since is None or r["timestamp"] >= q.since)
        and (q.until is None or r["timestamp"] < q.until)
    ]
    if q.by == "session":
        # Sessions are cut from the workspace's events in range, whatever their name.
        session_of = sessions(scope)
    units: dict[Any, list[Row]] = defaultdict(list)
    for r in scope:
        unit = (
            (r["person_id"], session_of[r["message_id"]]) if q.by == "session" else r["person_id"]
        )
        units[unit].append(r)

    def step_match(r: Row, i: int) -> bool:
        return _matches(r, q.steps[i].events, q.steps[i].filters)

    # Per unit: every attempt or chain as (s, [t1..tn] with None past its reach).
    arrivals: dict[Any, dict[int, tuple[int, int | None, int]]] = {}
    for unit, urows in units.items():
        urows.sort(key=lambda r: r["timestamp"])
        chains: list[tuple[int, list[int | None]]] = []
        if q.order == "ordered":
            # Every chain of events matching steps 1..k at strictly increasing times within the
            # window, enumerated (times suffice: events at the same instant are equivalent).
            times = [
                sorted({_us(e["timestamp"]) for e in urows if step_match(e, i)}) for i in range(n)
            ]

            def extend(
                chain: list[int], times: list[list[int]] = times, chains: list[Any] = chains
            ) -> None:
                chains.append((chain[0], [*chain, *[None] * (n - len(chain))]))
                k = len(chain)
                if k == n:
                    return
                for t in times[k]:
                    if t > chain[-1] and (w is None or t - chain[0] <= w):
                        extend([*chain, t])

            for t in times[0]:
                extend([t])
        elif q.order == "strict":
            moments = sorted(
                {_us(e["timestamp"]) for e in urows if e["event"] not in BOOKKEEPING_EVENTS}
            )
            for r in urows:
                if not step_match(r, 0) or r["event"] in BOOKKEEPING_EVENTS:
                    continue
                s = _us(r["timestamp"])
                chain: list[int | None] = [s] + [None] * (n - 1)
                pos = moments.index(s)
                for k in range(1, n):
                    if pos + k >= len(moments):
                        break
                    at = moments[pos + k]
                    if w is not None and at - s > w:
                        break
                    if not any(
                        step_match(e, k)
                        and _us(e["timestamp"]) == at
                        and e["event"] not in BOOKKEEPING_EVENTS
                        for e in urows
                    ):
                        break
                    chain[k] = at
                chains.append((s, chain))
        else:
            tagged = []
            for e in urows:
                st = next((i for i in range(n) if step_match(e, i)), None)
                if st is not None:
                    tagged.append((_us(e["timestamp"]), st))
            for s, _ in tagged:
                nexts = [
                    min((t for t, st in tagged if st == j and t >= s), default=None)
                    for j in range(n)
                ]
                chain = [None] * n
                for k in range(n):
                    got = nexts[: k + 1]
                    if any(x is None for x in got):
                        break
                    tk = max(x for x in got if x is not None)
                    if w is not None and tk - s > w:
                        break
                    chain[k] = tk
                chains.append((s, chain))
        # Exclusions: a chain with an excluded event strictly between its from-step and
        # to-step counts only up to the step before the to-step.
        cut_chains = []
        for s, chain in chains:
            chain = list(chain)
            for x in q.exclusions:
                assert x.to_step is not None
                ta, tb = chain[x.from_step - 1], chain[x.to_step - 1]
                if ta is None or tb is None:
                    continue
                if any(
                    _matches(e, x.events, x.filters)
                    and (q.order != "strict" or e["event"] not in BOOKKEEPING_EVENTS)
                    and ta < _us(e["timestamp"]) < tb
                    for e in urows
                ):
                    for k in range(x.to_step - 1, n):
                        chain[k] = None
            cut_chains.append((s, chain))
        # First arrival per step: earliest t_k, then latest start, then latest t_{k-1}.
        per_step: dict[int, tuple[int, int | None, int]] = {}
        for k in range(n):
            cands = [(c[k], s, c[k - 1] if k else None) for s, c in cut_chains if c[k] is not None]
            if not cands:
                continue
            tk = min(c[0] for c in cands)
            s_best = max(c[1] for c in cands if c[0] == tk)
            tps = [c[2] for c in cands if c[0] == tk and c[1] == s_best]
            tp = max(tps) if k else None  # type: ignore[type-var]
            per_step[k + 1] = (tk, tp, s_best)
        if per_step:
            arrivals[unit] = per_step

    # Breakdown values by first touch.
    values: dict[Any, str | None] = {}
    if q.breakdown is not None:
        bd = resolve_breakdown(q.breakdown)
        person_values: dict[str, str] = {}
        if bd.kind == "cohort":
            person_values = _cohorts(rows, q.workspace_id)
        elif bd.kind in ("trait", "event_or_trait"):
            person_values = _latest_traits(rows, q.workspace_id, bd.path)
        for unit, urows in units.items():
            if q.order == "any":
                touches = [e for e in urows if any(step_match(e, i) for i in range(n))]
            else:
                touches = [e for e in urows if step_match(e, 0)]
                if q.order == "strict":
                    touches = [e for e in touches if e["event"] not in BOOKKEEPING_EVENTS]
            if not touches:
                continue
            t0 = min(e["timestamp"] for e in touches)
            first = [value_of(e, bd.key) for e in touches if e["timestamp"] == t0]
            event_value = min((v for v in first if v is not None), default=None)
            pid = unit[0] if q.by == "session" else unit
            if bd.kind == "event":
                values[unit] = event_value
            elif bd.kind == "event_or_trait":
                values[unit] = event_value if event_value is not None else person_values.get(pid)
            else:
                values[unit] = person_values.get(pid)

    def summarize(members: list[Any]) -> list[StepRef]:
        out: list[StepRef] = []
        for k in range(1, n + 1):
            got = [arrivals[u][k] for u in members if k in arrivals[u]]
            prev = [(t - tp) / 1e6 for t, tp, _ in got if tp is not None]
            start = [(t - s) / 1e6 for t, _, s in got]
            out.append(
                (
                    len(got),
                    percentile_cont(prev, 0.5) if k > 1 else None,
                    percentile_cont(prev, 0.9) if k > 1 else None,
                    percentile_cont(start, 0.5) if k > 1 else None,
                    percentile_cont(start, 0.9) if k > 1 else None,
                )
            )
        return out

    total = summarize(list(arrivals))
    groups: dict[str | None, list[Any]] = defaultdict(list)
    if q.breakdown is not None:
        for u in arrivals:
            groups[values.get(u)].append(u)
    by_value = {v: summarize(members) for v, members in groups.items()}
    return total, by_value, {u: max(a) for u, a in arrivals.items()}


__all__ = ["EVENT_KEY_COLUMNS", "funnel", "passes", "percentile_cont", "value_of"]
