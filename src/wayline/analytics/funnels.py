"""Funnels: how many customers go through a sequence of steps, and where they drop off.

A funnel runner in three parts, like PostHog's query runners: :func:`validate` checks a
:class:`FunnelQuery`, :func:`funnel_sql` builds the query as data (pure, snapshot-testable, one
text per dialect), and :func:`run_funnel` executes it through a :class:`Backend` and shapes the
rows into frozen dataclasses.

Definitions (the brute-force reference in ``tests/analytics/funnel_reference.py`` implements
exactly these, and the tests check the SQL against it on random logs):

- **Events considered.** The workspace's events with ``since <= timestamp < until``. The unit is
  the customer (``person_id``, already resolved through identity merges) or, with
  ``by="session"``, the customer's session (:mod:`wayline.analytics.sessions`); attempts never
  cross units.
- **Steps.** Step *i* matches an event whose name is one of the step's events and whose
  properties pass all the step's filters (:mod:`wayline.analytics.filters`). One event may match
  several steps (``view, view`` is a funnel of two views) but fills at most one step of an
  attempt.
- **ordered** (default): a *chain* to step *k* is a sequence of events matching steps 1..k at
  strictly increasing times, the last at most ``window`` after the first (inclusive; no limit
  with ``window=None``). Every occurrence of step 1 may start one. Two events recorded at the
  same instant have no known order, so neither can follow the other in a chain.
- **strict**: every step-1 event starts an *attempt*; step *i+1* must happen at the unit's very
  next instant after step *i* (no event of the unit at a time strictly between them; the
  identity bookkeeping calls ``$identify``, ``$alias`` and ``$group`` do not count), within the
  window from step 1.
- **any**: the steps in any order. Every event matching some step starts an attempt at its time
  ``s``; each event counts for the *first* step (in the listed order) it matches. The attempt
  takes, for each step *j*, the first step-*j* event at or after ``s``, and reaches step *k* when
  steps 1..k have all happened, at ``T_k`` (the latest of those first times), with
  ``T_k - s`` within the window.
- **Exclusions** (ordered and strict only). ``(events, filters, from_step, to_step)``: a chain or
  attempt with a matching event strictly between its ``from_step`` and ``to_step`` events does
  not count at ``to_step`` or later (it still counts before). So a customer who did the excluded
  event between those steps is removed from the funnel from ``to_step`` on, unless another,
  clean chain of theirs gets there.
- **A unit reaches step k** if one of its (clean) chains or attempts does. ``users`` of step *k*
  counts them; ``conversion`` is ``users / users of step 1``, ``conversion_from_previous`` is
  relative to the step before, ``dropped`` is ``users of step k-1 - users of step k``.
- **Times to convert** (steps *k* ≥ 2). For each unit reaching step *k*: its *first arrival* at
  step *k* (the earliest step-*k* time over its chains), of the chains arriving then the one with
  the latest start ``s``, and of those the latest step-*(k-1)* time ``t_{k-1}`` — the tightest
  path, as ClickHouse's ``windowFunnel`` measures it. ``median_seconds``/``p90_seconds`` are the
  continuous quantiles (``percentile_cont``) of ``t_k - t_{k-1}`` over those units;
  ``*_from_start`` of ``t_k - s``.
- **Breakdown.** Each unit gets one value, by first touch: the value on its first step-1 event
  (first step event of any kind in ``any`` mode; ties: the smallest value) for an event column or
  property; the latest ``$identify`` value for a profile trait; the first-seen month for
  ``cohort`` (see :func:`wayline.analytics.filters.resolve_breakdown`). Units without a value
  fall under ``None``.

Execution notes (why the SQL looks like it does). The ordered funnel is the greedy of
ClickHouse's ``windowFunnel``: ``r_k`` holds every step-*k* event some clean chain reaches, each
with the chain of latest start, found by one "latest reachable step-(k-1) event strictly before"
look-up per step — an ``ASOF JOIN`` on DuckDB, a correlated ``max()`` elsewhere. That is exact
because along a unit's rows of ``r_k``, ordered by time, the carried start, previous-step time
and exclusion from-step times never decrease: the latest earlier row dominates every other
(latest start = widest remaining window, latest from-step = fewest excluded events in between),
and the first arrival of a unit carries the minimum of each, so plain ``min()`` aggregates pick
it. Each step therefore handles one row per candidate event, never one per attempt. Person keys
are 64-bit hashes and times epoch microseconds on DuckDB (sorts and joins on integers are much
cheaper than on strings and time-zoned timestamps); each step's events are read straight from
the table, the name filter pushed into the scan.

On DuckDB an ordered funnel without exclusions or breakdown does not run that SQL:
:func:`run_funnel` reads the funnel's events once, sorted by (unit, time) (:func:`pass_sql`),
and :mod:`wayline.analytics.funnel_pass` follows the same greedy in numpy, one sorted pass
instead of one ASOF join (two sorts) per step; DuckDB then computes the quantiles of the
arrivals, so the figures are exactly those of :func:`funnel_sql` (a test checks it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal, get_args

from wayline.analytics.backend import Backend
from wayline.analytics.filters import (
    Breakdown,
    PropertyFilter,
    Sql,
    cohort_sql,
    filters_sql,
    latest_trait_sql,
    parse_filter,
    resolve_breakdown,
    value_sql,
)
from wayline.analytics.ordering import pass_threads
from wayline.errors import InputError

FunnelOrder = Literal["ordered", "strict", "any"]
FunnelUnit = Literal["person", "session"]
ORDERS: Final = get_args(FunnelOrder)
UNITS: Final = get_args(FunnelUnit)
MAX_STEPS: Final = 20
DEFAULT_WINDOW: Final = timedelta(days=14)
#: Calls that record who someone is rather than what they did; they never break a strict funnel.
BOOKKEEPING_EVENTS: Final = ("$identify", "$alias", "$group")


@dataclass(frozen=True)
class FunnelStep:
    """One step: any of ``events``, each passing all ``filters``."""

    events: tuple[str, ...]
    name: str | None = None
    filters: tuple[PropertyFilter, ...] = ()

    @property
    def label(self) -> str:
        return self.name or "|".join(self.events)


@dataclass(frozen=True)
class FunnelExclusion:
    """Attempts with one of ``events`` strictly between steps ``from_step`` and ``to_step``
    (1-based; ``to_step=None``: the last step) do not count."""

    events: tuple[str, ...]
    filters: tuple[PropertyFilter, ...] = ()
    from_step: int = 1
    to_step: int | None = None


@dataclass(frozen=True)
class FunnelQuery:
    steps: tuple[FunnelStep, ...]
    window: timedelta | None = DEFAULT_WINDOW
    order: FunnelOrder = "ordered"
    exclusions: tuple[FunnelExclusion, ...] = ()
    breakdown: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    by: FunnelUnit = "person"
    workspace_id: str = "default"


@dataclass(frozen=True)
class FunnelStepResult:
    index: int
    name: str
    users: int
    conversion: float | None
    conversion_from_previous: float | None
    dropped: int
    median_seconds: float | None = None
    p90_seconds: float | None = None
    median_seconds_from_start: float | None = None
    p90_seconds_from_start: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "users": self.users,
            "conversion": self.conversion,
            "conversion_from_previous": self.conversion_from_previous,
            "dropped": self.dropped,
            "median_seconds": self.median_seconds,
            "p90_seconds": self.p90_seconds,
            "median_seconds_from_start": self.median_seconds_from_start,
            "p90_seconds_from_start": self.p90_seconds_from_start,
        }


@dataclass(frozen=True)
class FunnelBreakdownResult:
    value: str | None
    steps: tuple[FunnelStepResult, ...]


@dataclass(frozen=True)
class FunnelResult:
    query: FunnelQuery
    steps: tuple[FunnelStepResult, ...]
    breakdown: tuple[FunnelBreakdownResult, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "order": self.query.order,
            "window_seconds": (
                self.query.window.total_seconds() if self.query.window is not None else None
            ),
            "by": self.query.by,
            "steps": [s.to_dict() for s in self.steps],
        }
        if self.query.breakdown is not None:
            out["breakdown_by"] = self.query.breakdown
            out["breakdown"] = {
                (b.value if b.value is not None else "(none)"): [s.to_dict() for s in b.steps]
                for b in self.breakdown
            }
        return out


# ---------------------------------------------------------------------------------------------
# Parsing what a user types


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside square brackets."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


_STEP_RE = re.compile(r"^(?P<events>[^\[\]]+?)\s*(\[(?P<filters>[^\[\]]*)\])?$")


def parse_step(text: str) -> FunnelStep:
    """``a|b[key=value;price>=10]`` → a step accepting ``a`` or ``b`` with two filters."""
    m = _STEP_RE.match(text.strip())
    if not m:
        raise InputError(
            f"cannot read step {text!r}; write event|other[key=value;…]", field="steps"
        )
    events = tuple(e.strip() for e in m["events"].split("|") if e.strip())
    if not events:
        raise InputError(f"step {text!r} names no event", field="steps")
    filters = tuple(parse_filter(f) for f in (m["filters"] or "").split(";") if f.strip())
    return FunnelStep(events, filters=filters)


def parse_steps(text: str) -> tuple[FunnelStep, ...]:
    """``"a,b|c,d"`` → three steps; the second accepts ``b`` or ``c``."""
    return tuple(parse_step(part) for part in _split_top(text, ",") if part.strip())


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*$")


def parse_window(text: str) -> timedelta | None:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` → a timedelta; ``none`` → no window."""
    if text.strip().lower() in ("none", "off", "0"):
        return None
    m = _DURATION_RE.match(text.lower())
    if not m:
        raise InputError(f"cannot read window {text!r}; write 7d, 12h, 30m or none", field="window")
    unit = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "w": "weeks"}.get(
        m[2] or "d", "days"
    )
    return timedelta(**{unit: float(m[1])})


# ---------------------------------------------------------------------------------------------
# Validate


def validate(query: FunnelQuery) -> FunnelQuery:
    """The query, checked; exclusions get their ``to_step`` filled in. Raises InputError."""
    n = len(query.steps)
    if n < 1:
        raise InputError("a funnel needs at least one step", field="steps")
    if n > MAX_STEPS:
        raise InputError(f"a funnel has at most {MAX_STEPS} steps, got {n}", field="steps")
    for i, step in enumerate(query.steps, 1):
        if not step.events or any(not e for e in step.events):
            raise InputError(f"step {i} names no event", field="steps")
    if query.order not in ORDERS:
        raise InputError(f"unknown order {query.order!r}; use {', '.join(ORDERS)}", field="order")
    if query.by not in UNITS:
        raise InputError(f"unknown unit {query.by!r}; use {', '.join(UNITS)}", field="by")
    if query.window is not None and query.window <= timedelta(0):
        raise InputError("the conversion window must be positive", field="window")
    for name, value in (("since", query.since), ("until", query.until)):
        if value is not None and value.tzinfo is None:
            raise InputError(f"{name} must be timezone-aware (UTC)", field=name)
    if query.since is not None and query.until is not None and query.since >= query.until:
        raise InputError("empty date range: since must be before until", field="since")
    exclusions = []
    for x in query.exclusions:
        if query.order == "any":
            raise InputError("exclusions need an order: use ordered or strict", field="exclusions")
        to_step = x.to_step if x.to_step is not None else n
        if not 1 <= x.from_step < to_step <= n:
            raise InputError(
                f"exclusion between steps {x.from_step} and {to_step}: need 1 <= from < to <= {n}",
                field="exclusions",
            )
        if not x.events:
            raise InputError("an exclusion names no event", field="exclusions")
        exclusions.append(FunnelExclusion(x.events, x.filters, x.from_step, to_step))
    if query.breakdown is not None:
        resolve_breakdown(query.breakdown)
    return FunnelQuery(
        steps=query.steps,
        window=query.window,
        order=query.order,
        exclusions=tuple(exclusions),
        breakdown=query.breakdown,
        since=query.since,
        until=query.until,
        by=query.by,
        workspace_id=query.workspace_id,
    )


# ---------------------------------------------------------------------------------------------
# Build the SQL (pure)


def _window_us(query: FunnelQuery) -> int | None:
    if query.window is None:
        return None
    return query.window // timedelta(microseconds=1)


def _names_in(events: Sequence[str], dialect: str) -> Sql:
    """``event IN (…)``. On DuckDB the names are inlined as quoted literals: constant filters
    are pushed into the table scan (and evaluated on the compressed column), parameters are
    not. Elsewhere they stay parameters (a literal '%' would clash with psycopg's ``%s``)."""
    if dialect == "duckdb":
        return Sql("event IN (" + ", ".join(_literal(e) for e in events) + ")")
    return Sql(f"event IN ({', '.join('?' for _ in events)})", tuple(events))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _match_sql(events: Sequence[str], filters: Sequence[PropertyFilter], dialect: str) -> Sql:
    cond = _names_in(events, dialect)
    if filters:
        cond = cond + " AND " + filters_sql(filters, dialect=dialect)
    return "(" + cond + ")"


def _time_us(dialect: str) -> str:
    if dialect == "duckdb":
        return 'epoch_us("timestamp")'
    return 'CAST(EXTRACT(EPOCH FROM "timestamp") * 1000000 AS BIGINT)'


def _unit_key(query: FunnelQuery, dialect: str) -> str:
    if query.by == "session":
        if dialect == "duckdb":
            return "hash(person_id, session_key)"
        return "person_id || ' ' || session_key"
    # 64-bit hashes: two of 500 k customers collide with probability ~1e-8; strings elsewhere.
    return "hash(person_id)" if dialect == "duckdb" else "person_id"


def _within(expr: str, start: str, window_us: int | None) -> str:
    return "TRUE" if window_us is None else f"{expr} - {start} <= {window_us}"


def _cols(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(1, n + 1)]


def _latest_before(
    probe: str,
    probe_cols: Sequence[str],
    build: str,
    take: Sequence[tuple[str, str]],
    dialect: str,
    *,
    left: bool,
) -> str:
    """``SELECT <probe_cols>, <taken columns>``: each taken column comes from the ``build`` row
    of the same unit with the latest ``t`` strictly before the probe row's ``t``. Without
    ``left``, probe rows with no such build row are dropped.

    On DuckDB an ASOF join. Elsewhere one sort of both sides together and a running ``max()``
    per column — the same thing, because every column we take is non-decreasing in ``t`` within
    ``build`` (see the module docstring), and portable (PostgreSQL has no ASOF join). At equal
    times probe rows sort first, so build rows at the same instant are not "before".
    """
    cols = ", ".join(probe_cols)
    if dialect == "duckdb":
        taken = "".join(f", r.{src} AS {dst}" for src, dst in take)
        join = "ASOF LEFT JOIN" if left else "ASOF JOIN"
        return (
            f"SELECT {', '.join('n.' + c for c in probe_cols)}{taken} FROM {probe} AS n "
            f"{join} {build} AS r ON n.p = r.p AND n.t > r.t"
        )
    nulls = "".join(f", CAST(NULL AS BIGINT) AS _b{i}" for i in range(len(take)))
    empty = ", ".join(c if c in ("p", "t") else "CAST(NULL AS BIGINT)" for c in probe_cols)
    values = "".join(f", {src}" for src, _ in take)
    union = (
        f"SELECT {cols}, 1 AS _probe{nulls} FROM {probe} "
        f"UNION ALL SELECT {empty}, 0 AS _probe{values} FROM {build}"
    )
    frame = (
        "OVER (PARTITION BY p ORDER BY t, _probe DESC "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    running = "".join(f", max(_b{i}) {frame} AS {dst}" for i, (_, dst) in enumerate(take))
    inner = f"SELECT {cols}, _probe{running} FROM ({union}) AS u"
    keep = "" if left else f" AND {take[0][1]} IS NOT NULL"
    outs = ", ".join([*probe_cols, *(dst for _, dst in take)])
    return f"SELECT {outs} FROM ({inner}) AS q0 WHERE _probe = 1{keep}"


def _in_range(query: FunnelQuery) -> Sql:
    """The condition on the events of the funnel's workspace and time range."""
    where = Sql("workspace_id = ?", (query.workspace_id,))
    if query.since is not None:
        where = where + Sql(' AND "timestamp" >= ?', (query.since,))
    if query.until is not None:
        where = where + Sql(' AND "timestamp" < ?', (query.until,))
    return where


def _scope(query: FunnelQuery) -> tuple[list[Sql], str, Sql]:
    """(CTEs, source, condition): where the unit's events in range are read from."""
    ctes: list[Sql] = []
    where = _in_range(query)
    if query.by != "session":
        return ctes, "events", where
    from wayline.analytics.sessions import sessionize_sql

    # Sessions are cut from every event of the person in range, not only the funnel's.
    ctes.append("ev AS (SELECT * FROM events WHERE " + where + ")")
    ctes.append(Sql(f"src AS ({sessionize_sql('ev')})"))
    return ctes, "src", Sql("TRUE")


def _base_cte(query: FunnelQuery, dialect: str) -> list[Sql]:
    """CTEs up to ``base``: one row per relevant event with its unit ``p``, person ``pid``, time
    ``t`` (µs), one boolean per step ``m1..`` and per exclusion ``x1..``, and the breakdown
    value ``bd`` of the event."""
    ctes, source, where = _scope(query)
    names = sorted(
        {e for s in query.steps for e in s.events} | {e for x in query.exclusions for e in x.events}
    )
    if query.order == "strict":
        marks = ", ".join("?" for _ in BOOKKEEPING_EVENTS)
        where = where + Sql(f" AND event NOT IN ({marks})", BOOKKEEPING_EVENTS)
    else:
        where = where + " AND " + _names_in(names, dialect)
    cols: list[Sql | str] = [
        f"{_unit_key(query, dialect)} AS p",
        "person_id AS pid",
        f"{_time_us(dialect)} AS t",
    ]
    for i, step in enumerate(query.steps, 1):
        cols.append(_match_sql(step.events, step.filters, dialect) + f" AS m{i}")
    for i, x in enumerate(query.exclusions, 1):
        cols.append(_match_sql(x.events, x.filters, dialect) + f" AS x{i}")
    bd = resolve_breakdown(query.breakdown) if query.breakdown is not None else None
    if bd is not None and bd.kind in ("event", "event_or_trait"):
        cols.append(f"{value_sql(bd.key, dialect=dialect)} AS bd")
    ctes.append("base AS (SELECT " + Sql.join(", ", cols) + f" FROM {source} WHERE " + where + ")")
    return ctes


def _ordered_ctes(query: FunnelQuery, dialect: str) -> list[Sql | str]:
    """The ordered funnel as ``arrivals``: the greedy of ClickHouse's ``windowFunnel``, one
    ASOF join per step. ``r{k}`` holds every step-k event reachable by a clean chain, with the
    chain that has the latest start (``s``), its previous step's time (``tp``) and the times of
    the steps open exclusions start from (``a{i}``)."""
    n = len(query.steps)
    w = _window_us(query)
    # Each step's events straight from the table: the name filter is pushed into the scan, so
    # only that step's rows are read and hashed (cheaper than one shared CTE of all steps).
    _, source, where = _scope(query)
    unit = f"{_unit_key(query, dialect)} AS p, {_time_us(dialect)} AS t"
    kinds = [(f"e{i}", s.events, s.filters) for i, s in enumerate(query.steps, 1)]
    kinds += [(f"xe{i}", x.events, x.filters) for i, x in enumerate(query.exclusions, 1)]
    ctes: list[Sql | str] = [
        f"{name} AS (SELECT {unit} FROM {source} WHERE "
        + where
        + " AND "
        + _match_sql(events, filters, dialect)
        + ")"
        for name, events, filters in kinds
    ]

    def open_at(k: int) -> list[int]:  # exclusions whose from-step is passed and to-step not yet
        return [i for i, x in enumerate(query.exclusions, 1) if x.from_step <= k < (x.to_step or n)]

    # r1 is e1 itself: its start and from-step times are its own time. (Restricting it to
    # units with a step-2 event costs more than the join it would save.)
    ctes.append("r1 AS (SELECT p, t FROM e1)")
    for k in range(2, n + 1):
        if k == 2:
            take = [("t", "tp"), ("t", "s")] + [("t", f"a{i}") for i in open_at(1)]
        else:
            take = [("t", "tp"), ("s", "s")] + [(f"a{i}", f"a{i}") for i in open_at(k - 1)]
        looked = _latest_before(f"e{k}", ["p", "t"], f"r{k - 1}", take, dialect, left=False)
        keep = ["p", "t", "tp", "s"] + [
            f"t AS a{i}" if i not in open_at(k - 1) else f"a{i}" for i in open_at(k)
        ]
        closing = [f"a{i}" for i in _closing(query, k)]
        ctes.append(
            f"r{k}w AS (SELECT {', '.join(keep + closing)} "
            f"FROM ({looked}) AS q WHERE {_within('t', 's', w)})"
        )
        prev = f"r{k}w"
        prev_cols = ["p", "t", "tp", "s"] + [f"a{i}" for i in open_at(k)] + closing
        for i in _closing(query, k):
            # A chain with an excluded event strictly between its from-step and this step does
            # not count: the latest such event before this one must not be after a{i}.
            looked = _latest_before(
                prev, prev_cols, f"xe{i}", [("t", f"lx{i}")], dialect, left=True
            )
            ctes.append(
                f"r{k}x{i} AS (SELECT {', '.join(prev_cols)} FROM ({looked}) AS q "
                f"WHERE lx{i} IS NULL OR lx{i} <= a{i})"
            )
            prev = f"r{k}x{i}"
        kept = ", ".join(["p", "t", "tp", "s"] + [f"a{i}" for i in open_at(k)])
        ctes.append(f"r{k} AS (SELECT {kept} FROM {prev})")
    # Step 1 has no times to report: its units are all that is needed (a cheaper aggregate).
    arrivals = [
        "SELECT DISTINCT 1 AS k, p, CAST(NULL AS BIGINT) AS t, CAST(NULL AS BIGINT) AS tp, "
        "CAST(NULL AS BIGINT) AS s FROM e1"
    ]
    # Along r{k}, s and tp never decrease as t grows, so the unit's first arrival carries the
    # smallest of each: plain min() aggregates pick the whole first-arrival row.
    arrivals += [
        f"SELECT {k} AS k, p, min(t) AS t, min(tp) AS tp, min(s) AS s FROM r{k} GROUP BY p"
        for k in range(2, n + 1)
    ]
    ctes.append("arrivals AS (" + " UNION ALL ".join(arrivals) + ")")
    return ctes


def _closing(query: FunnelQuery, k: int) -> list[int]:
    """Exclusions whose to-step is step ``k``."""
    return [i for i, x in enumerate(query.exclusions, 1) if (x.to_step or len(query.steps)) == k]


def _cut_by_exclusions(query: FunnelQuery, dialect: str, chains: str) -> list[str]:
    """``cut``: the rows of ``chains`` (one per attempt: p, s, t1..tn) with every step from an
    exclusion's to-step on emptied when an excluded event lies strictly between the attempt's
    from-step and to-step."""
    n = len(query.steps)
    ctes = []
    prev = chains
    spoiled: list[str] = []
    base_cols = ["p", "s", *_cols(n)]
    for i, x in enumerate(query.exclusions, 1):
        assert x.to_step is not None
        ctes.append(f"xe{i} AS (SELECT p, t FROM base WHERE x{i})")
        # The first excluded event after the from-step, looked up as "latest before" from the
        # excluded events' side would need the chain's times; a correlated min() is clearer
        # here and strict/any funnels are not the hot path.
        sub = f"(SELECT min(x.t) FROM xe{i} AS x WHERE x.p = c.p AND x.t > c.t{x.from_step})"
        carried = "".join(f", c.z{j}" for j in range(1, i))
        ctes.append(
            f"xs{i} AS (SELECT {', '.join('c.' + c for c in base_cols)}{carried}, "
            f"CASE WHEN {sub} < c.t{x.to_step} THEN {x.to_step} ELSE {n + 1} END AS z{i} "
            f"FROM {prev} AS c)"
        )
        prev = f"xs{i}"
        spoiled.append(f"z{i}")
    cut = "least(" + ", ".join(spoiled) + ")" if len(spoiled) > 1 else spoiled[0]
    cols = ", ".join(
        ["p", "s"] + [f"CASE WHEN {k} < {cut} THEN t{k} END AS t{k}" for k in range(1, n + 1)]
    )
    ctes.append(f"cut AS (SELECT {cols} FROM {prev})")
    return ctes


def _attempt_arrivals(query: FunnelQuery, chains: str) -> str:
    """``arrivals`` from one row per attempt (p, s, t1..tn, NULL past its reach): per step, the
    first arrival, then the latest start among attempts arriving then. Within a unit, t_k and
    t_{k-1} never decrease as s grows (strict and any-order attempts), so grouping by the
    arrival time and then taking min() of each group's max() picks that attempt."""
    n = len(query.steps)
    parts = []
    for k in range(1, n + 1):
        tp = f"max(t{k - 1})" if k > 1 else "CAST(NULL AS BIGINT)"
        parts.append(
            f"SELECT {k} AS k, p, min(t) AS t, min(tp) AS tp, min(s) AS s FROM ("
            f"SELECT p, t{k} AS t, {tp} AS tp, max(s) AS s FROM {chains} "
            f"WHERE t{k} IS NOT NULL GROUP BY p, t{k}) AS g{k} GROUP BY p"
        )
    return "arrivals AS (" + " UNION ALL ".join(parts) + ")"


def _strict_ctes(query: FunnelQuery, dialect: str) -> list[Sql | str]:
    n = len(query.steps)
    w = _window_us(query)
    ctes: list[Sql | str] = [
        # The unit's distinct instants, numbered: step i+1 must sit at the next number.
        "ranked AS (SELECT *, dense_rank() OVER (PARTITION BY p ORDER BY t) AS rk FROM base)"
    ]
    ctes += [f"e{i} AS (SELECT DISTINCT p, rk, t FROM ranked WHERE m{i})" for i in range(1, n + 1)]
    ctes.append("c1 AS (SELECT p, t AS s, t AS t1, rk AS q FROM e1)")
    for k in range(2, n + 1):
        prev = ", ".join(f"r.{c}" for c in ["s", *_cols(k - 1)])
        ok = _within("n.t", "r.s", w)
        ctes.append(
            f"c{k} AS (SELECT r.p, {prev}, CASE WHEN {ok} THEN n.t END AS t{k}, "
            f"CASE WHEN {ok} THEN n.rk END AS q "
            f"FROM c{k - 1} AS r LEFT JOIN e{k} AS n ON n.p = r.p AND n.rk = r.q + 1)"
        )
    chains = f"c{n}"
    if query.exclusions:
        ctes.extend(_cut_by_exclusions(query, dialect, chains))
        chains = "cut"
    ctes.append(_attempt_arrivals(query, chains))
    return ctes


def _any_ctes(query: FunnelQuery, dialect: str) -> list[Sql | str]:
    n = len(query.steps)
    w = _window_us(query)
    first = "CASE " + " ".join(f"WHEN m{i} THEN {i}" for i in range(1, n + 1)) + " END"
    frame = "OVER (PARTITION BY p ORDER BY t RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)"
    nexts = ", ".join(
        f"min(CASE WHEN st = {j} THEN t END) {frame} AS n{j}" for j in range(1, n + 1)
    )
    ctes: list[Sql | str] = [
        f"tagged AS (SELECT p, t, {first} AS st FROM base)",
        f"firsts AS (SELECT DISTINCT p, t AS s, {nexts} FROM tagged WHERE st IS NOT NULL)",
    ]
    cols = []
    for k in range(1, n + 1):
        ns = [f"n{j}" for j in range(1, k + 1)]
        done = " AND ".join(f"{c} IS NOT NULL" for c in ns)
        tk = f"greatest({', '.join(ns)})" if k > 1 else "n1"
        cols.append(f"CASE WHEN {done} AND {_within(tk, 's', w)} THEN {tk} END AS t{k}")
    ctes.append(f"chains AS (SELECT p, s, {', '.join(cols)} FROM firsts)")
    ctes.append(_attempt_arrivals(query, "chains"))
    return ctes


_MODES = {"ordered": _ordered_ctes, "strict": _strict_ctes, "any": _any_ctes}


def _breakdown_ctes(query: FunnelQuery, dialect: str) -> list[Sql]:
    """``unit_value(p, value)``: each unit's breakdown value by first touch."""
    assert query.breakdown is not None
    bd: Breakdown = resolve_breakdown(query.breakdown)
    n = len(query.steps)
    touch = "m1" if query.order != "any" else " OR ".join(f"m{i}" for i in range(1, n + 1))
    value = "bd" if bd.kind in ("event", "event_or_trait") else "CAST(NULL AS VARCHAR)"
    ctes: list[Sql] = [
        Sql(
            f"touch AS (SELECT p, pid, bd FROM (SELECT p, pid, {value} AS bd, row_number() OVER ("
            f"PARTITION BY p ORDER BY t, {value} NULLS LAST) AS rn "
            f"FROM base WHERE {touch}) AS q WHERE rn = 1)"
        )
    ]
    if bd.kind == "event":
        ctes.append(Sql("unit_value AS (SELECT p, bd AS value FROM touch)"))
        return ctes
    if bd.kind == "cohort":
        person = cohort_sql(workspace_id=query.workspace_id)
    else:
        person = latest_trait_sql(bd.path, workspace_id=query.workspace_id, dialect=dialect)
    ctes.append("person_value AS (" + person + ")")
    pick = "COALESCE(touch.bd, pv.value)" if bd.kind == "event_or_trait" else "pv.value"
    ctes.append(
        Sql(
            f"unit_value AS (SELECT touch.p, {pick} AS value FROM touch "
            "LEFT JOIN person_value AS pv ON pv.person_id = touch.pid)"
        )
    )
    return ctes


def _ctes(query: FunnelQuery, dialect: str) -> list[Sql | str]:
    ctes: list[Sql | str] = list(_base_cte(query, dialect))
    ctes.extend(_MODES[query.order](query, dialect))
    return ctes


def funnel_sql(query: FunnelQuery, dialect: str = "duckdb") -> Sql:
    """The funnel as one SQL query (DuckDB-dialect text with ``?`` parameters).

    Rows: ``(is_total, value, k, users, [median, p90], [median, p90] from start)`` per step
    ``k`` — for all units (``is_total`` = 1) and, with a breakdown, per value; times in
    microseconds from the previous step and from the start (NULL for step 1).
    """
    query = validate(query)
    ctes = _ctes(query, dialect)

    def q(expr: str) -> str:
        # Both quantiles from one sort (a list on DuckDB, an array on PostgreSQL).
        return f"quantile_cont({expr}, [0.5, 0.9])"  # µs; seconds in Python

    body = f"a.k, count(*) AS users, {q('a.t - a.tp')} AS prev_q, {q('a.t - a.s')} AS start_q"
    if query.breakdown is None:
        return (
            "WITH "
            + Sql.join(",\n", ctes)
            + f"\nSELECT 1 AS is_total, NULL AS value, {body} FROM arrivals AS a "
            "GROUP BY a.k ORDER BY a.k"
        )
    ctes.extend(_breakdown_ctes(query, dialect))
    return (
        "WITH "
        + Sql.join(",\n", ctes)
        + f"\nSELECT GROUPING(v.value) AS is_total, v.value AS value, {body} "
        "FROM arrivals AS a LEFT JOIN unit_value AS v ON v.p = a.p "
        "GROUP BY GROUPING SETS ((a.k, v.value), (a.k)) ORDER BY is_total DESC, value, a.k"
    )


def dropped_sql(
    query: FunnelQuery,
    step: int,
    *,
    value: str | None = None,
    any_value: bool = True,
    limit: int | None = None,
    dialect: str = "duckdb",
) -> Sql:
    """Persons (``person_id``) with a unit that reached step ``step - 1`` but not ``step``;
    with a breakdown and ``any_value=False``, only units whose value is ``value``."""
    query = validate(query)
    n = len(query.steps)
    if not 2 <= step <= n:
        raise InputError(f"the drop-off step must be between 2 and {n}", field="dropped_at")
    ctes = _ctes(query, dialect)
    ctes.append("units AS (SELECT DISTINCT p, pid FROM base)")
    where = Sql(f"a.k = {step - 1} AND a.p NOT IN (SELECT p FROM arrivals WHERE k = {step})")
    join = ""
    if query.breakdown is not None and not any_value:
        ctes.extend(_breakdown_ctes(query, dialect))
        join = " LEFT JOIN unit_value AS v ON v.p = a.p"
        where = where + (
            Sql(" AND v.value IS NULL") if value is None else Sql(" AND v.value = ?", (value,))
        )
    sql = (
        "WITH "
        + Sql.join(",\n", ctes)
        + "\nSELECT DISTINCT u.pid FROM arrivals AS a JOIN units AS u ON u.p = a.p"
        + join
        + " WHERE "
        + where
        + " ORDER BY u.pid"
    )
    if limit is not None:
        sql = sql + f" LIMIT {int(limit)}"
    return sql


# ---------------------------------------------------------------------------------------------
# Execute and shape


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def _quantile(row: Sequence[Any] | None, col: int, i: int) -> float | None:
    assert row is not None
    values = row[col]
    return None if values is None else _num(float(values[i]) / 1_000_000)


def _shape(query: FunnelQuery, rows: Sequence[Sequence[Any]]) -> tuple[FunnelStepResult, ...]:
    """Rows ``(k, users, [median, p90], [median, p90] from start)`` → step results (steps
    nobody reached have no row)."""
    by_k = {int(r[0]): r for r in rows}
    users = [int(by_k[k][1]) if k in by_k else 0 for k in range(1, len(query.steps) + 1)]
    out = []
    for i, step in enumerate(query.steps):
        row = by_k.get(i + 1)
        prev = users[i - 1] if i else None
        timed = row is not None and i > 0
        out.append(
            FunnelStepResult(
                index=i + 1,
                name=step.label,
                users=users[i],
                conversion=(users[i] / users[0]) if users[0] else None,
                conversion_from_previous=(users[i] / prev) if prev else None,
                dropped=(prev - users[i]) if prev is not None else 0,
                median_seconds=_quantile(row, 2, 0) if timed else None,
                p90_seconds=_quantile(row, 2, 1) if timed else None,
                median_seconds_from_start=_quantile(row, 3, 0) if timed else None,
                p90_seconds_from_start=_quantile(row, 3, 1) if timed else None,
            )
        )
    return tuple(out)


def pass_sql(query: FunnelQuery, dialect: str = "duckdb") -> Sql:
    """The rows :func:`wayline.analytics.funnel_pass.ordered_arrivals` works on: one per event
    of a step in range, with its unit ``p``, time ``t`` (µs) and the bit mask ``m`` of the
    steps it matches (bit ``i - 1`` for step ``i``); read in one scan, in (unit, time) order."""
    query = validate(query)
    ctes, source, where = _scope(query)
    names = sorted({e for s in query.steps for e in s.events})
    select = (
        f"SELECT {_unit_key(query, dialect)} AS p, {_time_us(dialect)} AS t, CAST("
        + _step_bits(query, dialect)
        + f" AS INTEGER) AS m FROM {source} WHERE "
        + where
        + " AND "
        + _names_in(names, dialect)
        # Sorted by DuckDB (in parallel). Measured on the 5.9 M benchmark rows: ~1.6 CPU-s
        # for reading and the pass, against ~1.9 with the sort done in numpy instead
        # (ordering.unit_time_order, which wins on the wider rows of paths).
        + " ORDER BY p, t"
    )
    return ("WITH " + Sql.join(",\n", ctes) + "\n" + select) if ctes else select


#: The per-step times of a one-pass funnel, aggregated by DuckDB as ``funnel_sql`` does.
_PASS_TIMES_SQL = (
    "SELECT k, count(*) AS users, quantile_cont(dp, [0.5, 0.9]) AS prev_q, "
    "quantile_cont(ds, [0.5, 0.9]) AS start_q FROM funnel_times GROUP BY k ORDER BY k"
)


def _one_pass(backend: Backend, query: FunnelQuery) -> bool:
    """Whether the funnel runs as one sorted pass in numpy (:mod:`funnel_pass`): an ordered
    funnel without exclusions or breakdown on DuckDB. Measured at 10 M events (5 steps): ~1.5
    CPU-s against ~2.0-2.2 for the ASOF chain of :func:`funnel_sql`, which every other case
    uses."""
    return (
        backend.dialect == "duckdb"
        and hasattr(backend, "fetch_arrow")
        and hasattr(backend, "fetch_over")
        and query.order == "ordered"
        and not query.exclusions
        and query.breakdown is None
    )


def _step_bits(query: FunnelQuery, dialect: str) -> Sql:
    """The bit mask of the steps an event matches (bit ``i - 1`` for step ``i``), as SQL."""
    return Sql.join(
        " + ",
        (
            "(CASE WHEN "
            + _match_sql(step.events, step.filters, dialect)
            + f" THEN {1 << i} ELSE 0 END)"
            for i, step in enumerate(query.steps)
        ),
    )


def session_pass_sql(query: FunnelQuery) -> Sql:
    """The rows of a per-session one-pass funnel: every event in range (sessions are cut from
    all of a person's events, not only the funnel's), with the person's and the
    ``session_id``'s hashes, the time in µs and in epoch seconds, and the step mask ``m`` (0
    for the events of no step); unsorted (:func:`wayline.analytics.sessions_pass.sessions`
    sorts them)."""
    query = validate(query)
    return (
        "SELECT hash(person_id) AS pid, session_id IS NOT NULL AS has_sid, "
        'hash(session_id) AS sid, epoch_us("timestamp") AS t, epoch("timestamp") AS e, CAST('
        + _step_bits(query, "duckdb")
        + " AS INTEGER) AS m FROM events WHERE "
        + _in_range(query)
    )


def _arrivals_by_session(backend: Any, query: FunnelQuery) -> list[Any]:
    """The one pass per session: sessions cut in numpy, in the sort the pass needs anyway,
    rather than by :func:`~wayline.analytics.sessions.sessionize_sql`'s window functions
    (10 M-event paths benchmark log, 5 steps, loaded machine: ~15 CPU-s with them)."""
    import numpy as np

    from wayline.analytics.funnel_pass import ordered_arrivals_in_orders
    from wayline.analytics.sessions import DEFAULT_SESSION_GAP
    from wayline.analytics.sessions_pass import sessions

    sql = session_pass_sql(query)
    table = backend.fetch_arrow(sql.text, sql.params)
    times = table.column("t").to_numpy()
    masks = table.column("m").to_numpy()
    cut = sessions(
        table.column("pid").to_numpy(),
        table.column("sid").to_numpy(),
        table.column("has_sid").to_numpy(),
        times,
        np.zeros(len(times), dtype=np.int64),  # ties are one instant to a funnel
        table.column("e").to_numpy(),
        gap_seconds=DEFAULT_SESSION_GAP.total_seconds(),
        keep=masks != 0,
        parts=pass_threads(),
    )
    return ordered_arrivals_in_orders(
        cut.units, times, masks, len(query.steps), _window_us(query), orders=cut.orders
    )


def _run_one_pass(backend: Any, query: FunnelQuery) -> FunnelResult:
    import numpy as np
    import pyarrow as pa

    from wayline.analytics.funnel_pass import ordered_arrivals_in_parts

    if query.by == "session":
        steps = _arrivals_by_session(backend, query)
    else:
        sql = pass_sql(query, backend.dialect)
        table = backend.fetch_arrow(sql.text, sql.params)
        steps = ordered_arrivals_in_parts(
            table.column("p").to_numpy(),
            table.column("t").to_numpy(),
            table.column("m").to_numpy(),
            len(query.steps),
            _window_us(query),
            parts=pass_threads(),
        )
    rows: list[Sequence[Any]] = []
    if steps[0].users:
        rows.append((1, steps[0].users, None, None))
    later = steps[1:]
    if any(s.users for s in later):
        # Quantiles by DuckDB itself, so that they are exactly those of funnel_sql.
        times = pa.table(
            {
                "k": np.repeat(np.arange(2, len(steps) + 1), [s.users for s in later]),
                "dp": np.concatenate([s.from_previous for s in later]),
                "ds": np.concatenate([s.from_start for s in later]),
            }
        )
        rows += backend.fetch_over(_PASS_TIMES_SQL, {"funnel_times": times})
    return FunnelResult(query=query, steps=_shape(query, rows))


def run_funnel(backend: Backend, query: FunnelQuery) -> FunnelResult:
    """Validate, build, run on ``backend`` and shape the funnel."""
    query = validate(query)
    if _one_pass(backend, query):
        return _run_one_pass(backend, query)
    sql = funnel_sql(query, backend.dialect)
    rows = backend.fetch(sql.text, sql.params)
    total = [r[2:] for r in rows if int(r[0]) == 1]
    groups: dict[str | None, list[Sequence[Any]]] = {}
    for r in rows:
        if int(r[0]) == 0:
            groups.setdefault(None if r[1] is None else str(r[1]), []).append(r[2:])
    breakdown = tuple(FunnelBreakdownResult(v, _shape(query, g)) for v, g in groups.items())
    return FunnelResult(query=query, steps=_shape(query, total), breakdown=breakdown)


def dropped_persons(
    backend: Backend,
    query: FunnelQuery,
    step: int,
    *,
    value: str | None = None,
    any_value: bool = True,
    limit: int | None = None,
) -> list[str]:
    """Ids of the persons who dropped at ``step`` (reached ``step - 1``, not ``step``)."""
    sql = dropped_sql(
        query, step, value=value, any_value=any_value, limit=limit, dialect=backend.dialect
    )
    return [str(r[0]) for r in backend.fetch(sql.text, sql.params)]
