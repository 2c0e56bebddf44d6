"""Assembling the journey map from a store's events.

:func:`build_map` runs in three steps, like the analytics query runners: :func:`validate` checks
a :class:`MapQuery`; :func:`map_queries` builds the SQL as data (pure: the stage mapping becomes a
``VALUES`` table joined to the events, so the classification runs inside the database); then the
rows are shaped into a :class:`~wayline.journeymap.model.JourneyMap`. Two scans of the events do
the work whatever the number of views: one groups the events per customer, stage and action
and reads from that grouping both the actions and touchpoints per stage and per-customer
summaries (stages, drop-offs, funnel, KPIs); the other groups them per customer, stage, visit,
channel and device and reads visits, channels and devices per stage from that. The SQL is
DuckDB's (``arg_max``, ``histogram``, list unnesting); on another backend :func:`build_map`
refuses with a :class:`ConfigError`.

Definitions (``docs/journey-map.md`` says the same for store owners):

- **Customers of a view**: persons (``person_id``, after identity resolution) with at least one
  event in ``[since, until)`` — identity bookkeeping calls (``$identify``…) excepted — whose
  attributes pass the view's conditions. An attribute is the person's **first-touch** value in
  the period for event columns and properties (``device``, ``channel``, ``country``…), the
  latest ``$identify`` value for a trait (``persona``, ``traits.plan``), and for
  ``customer_type``: ``loyal`` (ordered before the period), ``returning`` (seen before, never
  ordered) or ``new``.
- **Entered** a stage: customers with an event of that stage; awareness counts every customer
  who visited the store (an event of awareness, consideration or decision: whoever browses has
  arrived), retention every buyer too. Customers whose only events in the period are
  server-side (a delivery, an e-mail opened) enter only the stages of those events.
- **Moved on**: awareness → consideration or decision; consideration → decision; decision →
  purchase (an event with role ``purchase``); retention → a repeat purchase (two orders or more in
  the period). Advocacy is the end of the map. **Dropped** = entered − moved on; **where** they
  dropped is the last action of each of them in the period.
- **Time in stage**: median over customers of last − first event of the stage; **time to next**:
  median of first event of the next stage (or purchase) − first event of this one, over
  customers for whom it came later.
- **Funnel** (by role: page view → product view → add to cart → checkout → payment → purchase,
  steps the store does not track left out): a customer reaches step *k* when they did steps
  1..k in the period and the last occurrence of step *k* is not before the first occurrence of
  any earlier step.
- **KPIs**: conversion rate = buyers / customers; cart abandonment = customers who added to the
  cart and did not order afterwards / customers who added to the cart; checkout completion;
  add-to-cart rate = adders / product viewers; repeat-purchase rate = customers with two or more
  orders / buyers; revenue and average order value from purchase events' ``revenue``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from wayline.analytics.backend import Backend
from wayline.analytics.filters import (
    Sql,
    cohort_sql,
    date_range_sql,
    latest_trait_sql,
    resolve_breakdown,
    value_sql,
)
from wayline.errors import ConfigError, InputError
from wayline.journeymap.model import (
    Emotion,
    Flow,
    FunnelStepView,
    JourneyMap,
    JourneyView,
    Kpi,
    Metric,
    PainPointView,
    Share,
    StageView,
    UnknownEvent,
)
from wayline.journeymap.stages import FUNNEL_ROLES, ROLES, STAGES, EventClass, StageMapping

log = logging.getLogger(__name__)

CENT: Final = Decimal("0.01")
ALL_LABEL: Final = "All customers"
MAX_VIEWS: Final = 4
STAGE_LABELS: Final[dict[str, str]] = {
    "awareness": "Awareness",
    "consideration": "Consideration",
    "decision": "Decision",
    "retention": "Retention",
    "advocacy": "Advocacy",
}
NEXT_GOALS: Final[dict[str, str | None]] = {
    "awareness": "browses products (consideration)",
    "consideration": "adds to cart or checks out (decision)",
    "decision": "places an order",
    "retention": "orders again",
    "advocacy": None,
}
#: Keys that select persons by something other than an event value.
CUSTOMER_TYPE: Final = "customer_type"
_BOOKKEEPING_ROLE: Final = "identify"
_PURCHASE: Final = "purchase"


@dataclass(frozen=True)
class Condition:
    """``key = value`` on a person's attribute (see the module docstring)."""

    key: str
    value: str

    def __post_init__(self) -> None:
        if self.key != CUSTOMER_TYPE and self.key not in ("persona",):
            resolve_breakdown(self.key)


@dataclass(frozen=True)
class MapQuery:
    """What to draw: the period, the customers, and the side-by-side views."""

    workspace_id: str = "default"
    since: datetime | None = None
    """None: from the workspace's first event."""
    until: datetime | None = None
    """None: just after the workspace's last event."""
    conditions: tuple[Condition, ...] = ()
    """Persona / segment / device / channel filters applied to every view (AND)."""
    breakdown: str | None = None
    """Draw one view per value of this attribute, side by side."""
    breakdown_values: tuple[str, ...] = ()
    """Which values (default: the largest ones, at most ``MAX_VIEWS``)."""
    top: int = 5
    """How many actions, touchpoints, channels… per stage."""
    compare_previous: bool = False
    with_pain_points: bool = True


def parse_condition(text: str) -> Condition:
    """``device=mobile`` → a :class:`Condition`; InputError if it is not ``key=value``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise InputError(f"cannot read {text!r}; write key=value (device=mobile)", field="segment")
    return Condition(_canonical_key(key.strip()), value.strip())


def _canonical_key(key: str) -> str:
    return {"device": "device_type", "platform": "device_type"}.get(key, key)


def validate(q: MapQuery) -> MapQuery:
    for name, value in (("since", q.since), ("until", q.until)):
        if value is not None and value.tzinfo is None:
            raise InputError(f"{name} must be timezone-aware (UTC)", field=name)
    if q.since is not None and q.until is not None and q.since >= q.until:
        raise InputError(f"empty period: since {q.since} is not before until {q.until}")
    if q.top < 1:
        raise InputError("top must be at least 1", field="top")
    if len(q.breakdown_values) > MAX_VIEWS:
        raise InputError(f"at most {MAX_VIEWS} views side by side", field="breakdown")
    if q.breakdown is not None:
        Condition(_canonical_key(q.breakdown), "x")
    return q


# ---------------------------------------------------------------------------------------------
# Building the SQL (pure)


def _stage_no(stage: str) -> int:
    return STAGES.index(stage)  # type: ignore[arg-type,unused-ignore]


#: Action codes at or above this are page views, coded by touchpoint.
PAGE_ACT: Final = 100_000


@dataclass(frozen=True)
class Codes:
    """Small integers for event names, touchpoints and roles: the query groups and compares
    integers, and the names ride along as parameters of the mapping table only."""

    names: tuple[str, ...]
    touchpoints: tuple[str, ...]

    def role(self, role: str) -> int:
        return ROLES.index(role) + 1

    def touchpoint(self, name: str) -> int:
        return self.touchpoints.index(name)

    def action(self, code: int) -> str:
        """An action code → its name (``$page:<touchpoint>`` for page views)."""
        if code >= PAGE_ACT:
            return "$page:" + self.touchpoints[code - PAGE_ACT]
        return self.names[code]


def _role_code(codes: Codes, role: str | None) -> int:
    return codes.role(role) if role else 0


def codes_for(classes: Mapping[str, EventClass], mapping: StageMapping) -> Codes:
    tps = sorted({c.touchpoint for c in classes.values()} | {p.touchpoint for p in mapping.pages})
    return Codes(tuple(sorted(classes)), tuple(tps))


def _mapping_cte(classes: Mapping[str, EventClass], codes: Codes) -> Sql:
    """``m(name, code, stp, role)``: every event name of the period, coded (``stp``: its stage
    and touchpoint, :func:`_stp`)."""
    rows = [
        Sql(
            "(?, ?, ?, ?)",
            (
                n,
                i,
                _stp(_stage_no(classes[n].stage), codes.touchpoint(classes[n].touchpoint)),
                _role_code(codes, classes[n].role),
            ),
        )
        for i, n in enumerate(codes.names)
    ]
    if not rows:
        rows = [Sql("(?, ?, ?, ?)", ("", -1, 0, 0))]
    return Sql("m(name, code, stp, role) AS (VALUES ") + Sql.join(", ", rows) + ")"


def _stp(stage: int, touchpoint: int) -> int:
    """A stage number and a touchpoint code in one integer (``st << 16 | tp``)."""
    return stage << 16 | touchpoint


def _page_case(mapping: StageMapping, codes: Codes) -> Sql:
    """Stage number and touchpoint code of an event row in one integer (:func:`_stp`), page
    rules applied to page views: one ``CASE`` chain per row instead of one per column (the
    chains were a third of the cost of reading the events on 10 M events)."""
    if not mapping.pages:
        return Sql("m.stp")
    parts: list[str] = []
    params: list[Any] = []
    for rule in mapping.pages:
        stp = _stp(_stage_no(rule.stage), codes.touchpoint(rule.touchpoint))
        parts.append(f"WHEN starts_with(e.page_path, ?) THEN {stp}")
        params.append(rule.prefix)
    head = f"CASE WHEN m.role = {codes.role('page_view')} AND e.page_path IS NOT NULL THEN CASE "
    return Sql(head + " ".join(parts) + " ELSE m.stp END ELSE m.stp END", tuple(params))


def _attribute_sql(
    key: str, q: MapQuery, since: datetime, until: datetime, purchase_names: Sequence[str]
) -> Sql:
    """``SELECT person_id, value``: a person's attribute (see the module docstring)."""
    ws = q.workspace_id
    if key == CUSTOMER_TYPE:
        marks = ", ".join("?" for _ in purchase_names) or "NULL"
        return Sql(
            "SELECT person_id, CASE "
            f"WHEN count(*) FILTER (WHERE event IN ({marks}) AND timestamp < ?) > 0 "
            "THEN 'loyal' WHEN min(timestamp) < ? THEN 'returning' ELSE 'new' END AS value "
            "FROM events WHERE workspace_id = ? AND timestamp < ? GROUP BY person_id",
            (*purchase_names, since, since, ws, until),
        )
    if key == "persona":
        key = "traits.persona"
    b = resolve_breakdown(key)
    if b.kind == "trait" or (b.kind == "event_or_trait" and key.startswith("traits.")):
        return latest_trait_sql(b.path, workspace_id=ws)
    if b.kind == "cohort":
        return cohort_sql(workspace_id=ws)
    expr = value_sql(key)
    return (
        Sql(
            f"SELECT person_id, arg_min({expr}, timestamp) AS value FROM events "
            f"WHERE workspace_id = ? AND {expr} IS NOT NULL AND event NOT IN "
            "('$identify', '$alias', '$group') AND ",
            (ws,),
        )
        + date_range_sql(since, until)
        + " GROUP BY person_id"
    )


def _ev_cte(
    q: MapQuery,
    mapping: StageMapping,
    classes: Mapping[str, EventClass],
    codes: Codes,
    since: datetime,
    until: datetime,
    purchase_names: Sequence[str],
) -> Sql:
    """``WITH m, [conditions], ev``: the period's events of the view's customers, coded —
    person and session hashed to integers, time in epoch microseconds (joins, sorts and
    distinct counts on 64-bit integers are several times cheaper than on text)."""
    stp = _page_case(mapping, codes)
    ctes: list[Sql] = [_mapping_cte(classes, codes)]
    joins = ""
    seg = "'all'"
    conds: list[Sql] = []
    for i, c in enumerate(q.conditions):
        attr = _attribute_sql(c.key, q, since, until, purchase_names)
        ctes.append(Sql(f"c{i} AS (") + attr + ")")
        joins += f" JOIN c{i} ON c{i}.person_id = e.person_id"
        conds.append(Sql(f" AND c{i}.value = ?", (c.value,)))
    if q.breakdown is not None:
        attr = _attribute_sql(_canonical_key(q.breakdown), q, since, until, purchase_names)
        ctes.append(Sql("bd AS (") + attr + ")")
        joins += " JOIN bd ON bd.person_id = e.person_id"
        seg = "bd.value"
        if q.breakdown_values:
            marks = ", ".join("?" for _ in q.breakdown_values)
            conds.append(Sql(f" AND bd.value IN ({marks})", q.breakdown_values))
    ev = (
        Sql(
            "ev AS MATERIALIZED (SELECT seg, pid, ts, sess, ch, dev, revenue, role, "
            f"CASE WHEN role = {codes.role('page_view')} THEN {PAGE_ACT} + (stp & 65535) "
            "ELSE code END AS act, stp >> 16 AS st, stp & 65535 AS tp FROM ("
            f"SELECT {seg} AS seg, hash(e.person_id) AS pid, epoch_us(e.timestamp) AS ts, "
            "CASE WHEN e.session_id IS NOT NULL THEN hash(e.session_id) END AS sess, "
            "e.channel AS ch, e.device_type AS dev, e.revenue, m.role, m.code, "
        )
        + stp
        + f" AS stp FROM events e JOIN m ON m.name = e.event{joins} WHERE e.workspace_id = ? AND "
    )
    ev = Sql(ev.text, (*ev.params, q.workspace_id))
    ev = ev + date_range_sql(since, until, alias="e") + f" AND m.role <> {codes.role('identify')}"
    for cond in conds:
        ev = ev + cond
    ctes.append(ev + ") AS _e)")
    return Sql("WITH ") + Sql.join(", ", ctes)


#: ``pd`` groups on one 64-bit key that packs an event row's stage, action, touchpoint and role
#: (bits 44+, 24–43, 8–23, 0–7), and on 64-bit hashes of its channel and device: grouping
#: 10 M events on integers instead of four small integers and two strings, and counting
#: customers on them, cost 1.2 s less CPU (of 8) on 10 M events.
_PACK: Final = (
    "(CAST(st AS BIGINT) << 44) | (CAST(act AS BIGINT) << 24) | (CAST(tp AS BIGINT) << 8) "
    "| CAST(role AS BIGINT)"
)


def _check_packable(codes: Codes) -> None:
    """The codes fit the bits :data:`_PACK` gives them (programming limits, not user input:
    a store has a few dozen event names and touchpoints)."""
    if PAGE_ACT + len(codes.touchpoints) >= 1 << 20 or len(codes.names) >= PAGE_ACT:
        raise ConfigError("too many distinct event names or touchpoints for the journey map")
    if len(codes.touchpoints) >= 1 << 16 or len(ROLES) + 1 >= 1 << 8:
        raise ConfigError("too many touchpoints or roles for the journey map")


def _names_cte(q: MapQuery, since: datetime, until: datetime) -> Sql:
    """``nm(kind, name, h)``: the period's channels and devices and their hashes, to name the
    hashed values ``pd`` groups on (a read of two dictionary-compressed columns)."""
    parts = []
    for kind, column in (("ch", "channel"), ("dev", "device_type")):
        parts.append(
            Sql(
                f"SELECT '{kind}' AS kind, name, hash(name) AS h FROM (SELECT DISTINCT "
                f"coalesce({column}, 'unknown') AS name FROM events WHERE workspace_id = ? AND ",
                (q.workspace_id,),
            )
            + date_range_sql(since, until)
            + f") AS _{kind}"
        )
    return Sql(", nm AS (") + Sql.join(" UNION ALL ", parts) + ")"


def _dims_sql() -> tuple[str, list[str], str]:
    """Events and customers per stage and action / touchpoint (first statement, from ``pd``),
    and per stage visits and events and customers per channel / device (second statement).

    ``pd`` has one row per customer and action in a stage (an action's touchpoint and role
    follow from it), so an action's customers are its rows. Per touchpoint, customers are
    counted by grouping per touchpoint and customer first, then counting rows (the same as
    ``count(DISTINCT pid)``, on integer keys). A stage's events are the sum of its actions'
    events, its customers those of ``pp``.

    The second statement groups the events per customer, stage, visit, channel and device
    (``g``) and reads from it the distinct visits per stage and the customers per channel and
    device: kept out of ``pd``, channel and device made it a third larger (3.7 M rows instead
    of 2.75 M on 10 M events) for everything that reads it."""
    pd = (
        ", pd AS MATERIALIZED (SELECT seg, pid, k >> 44 AS st, (k >> 24) & 1048575 AS act, "
        "(k >> 8) & 65535 AS tp, k & 255 AS role, count(*) AS n, min(ts) AS t0, "
        f"max(ts) AS t1, sum(revenue) AS rev FROM (SELECT *, {_PACK} AS k FROM ev) AS _ev "
        "GROUP BY seg, pid, k)"
    )
    nul = "CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DECIMAL(18,2)), NULL"

    def per_customer(source: str, value: str) -> str:
        return (
            f"(SELECT seg, st, {value} AS v, count(*) AS p, sum(n) AS e FROM (SELECT seg, st, "
            f"{value}, pid, sum(n) AS n FROM {source} GROUP BY seg, st, {value}, pid) AS _c "
            "GROUP BY seg, st, v)"
        )

    parts = [
        f"SELECT 'act', seg, st, act, NULL, count(*), sum(n), {nul} FROM pd GROUP BY seg, st, act",
        f"SELECT 'tp', seg, st, v, NULL, p, e, {nul} FROM {per_customer('pd', 'tp')} AS _t",
    ]
    second = (
        ", g AS MATERIALIZED (SELECT seg, pid, st, sess, hash(coalesce(ch, 'unknown')) AS chh, "
        "hash(coalesce(dev, 'unknown')) AS devh, count(*) AS n FROM ev "
        "GROUP BY seg, pid, st, sess, chh, devh) "
        "SELECT 'stage_tot', seg, st, NULL, NULL, 0, 0, "
        f"CAST(count(DISTINCT sess) AS DOUBLE), NULL, NULL, NULL FROM g GROUP BY seg, st "
        f"UNION ALL SELECT 'ch', x.seg, x.st, NULL, nm.name, x.p, x.e, {nul} "
        f"FROM {per_customer('g', 'chh')} AS x JOIN nm ON nm.kind = 'ch' AND nm.h = x.v "
        f"UNION ALL SELECT 'dev', x.seg, x.st, NULL, nm.name, x.p, x.e, {nul} "
        f"FROM {per_customer('g', 'devh')} AS x JOIN nm ON nm.kind = 'dev' AND nm.h = x.v"
    )
    return pd, parts, second


def _persons_parts(codes: Codes, funnel_roles: Sequence[str]) -> tuple[str, list[str]]:
    """Per-customer summaries (``pp``, then the funnel layers) and the rows counted from
    them: stage figures, drop-off points, funnel steps and totals."""
    purchase = codes.role(_PURCHASE)
    # Read from pd (one row per customer, stage, action, channel and device, with its first
    # and last time), not from the raw events: a third of the rows.
    cols = ["seg", "pid", "arg_max(act, t1) AS last_act"]
    for i in range(len(STAGES)):
        cols.append(f"arg_max(act, t1) FILTER (WHERE st = {i}) AS la{i}")
        cols.append(f"min(t0) FILTER (WHERE st = {i}) AS f{i}")
        cols.append(f"max(t1) FILTER (WHERE st = {i}) AS l{i}")
    for k, role in enumerate(funnel_roles):
        cols.append(f"min(t0) FILTER (WHERE role = {codes.role(role)}) AS fr{k}")
        cols.append(f"max(t1) FILTER (WHERE role = {codes.role(role)}) AS lr{k}")
    for role in (
        "add_to_cart",
        "checkout",
        "product_view",
        "refund",
        "support",
        "review",
        "referral",
    ):
        cols.append(f"min(t0) FILTER (WHERE role = {codes.role(role)}) AS first_{role}")
    cols += [
        f"min(t0) FILTER (WHERE role = {purchase}) AS fp",
        f"max(t1) FILTER (WHERE role = {purchase}) AS lp",
        f"coalesce(sum(n) FILTER (WHERE role = {purchase}), 0) AS orders",
        f"sum(rev) FILTER (WHERE role = {purchase}) AS rev",
    ]
    # Funnel: t_k is the first time by which steps 1..k had all happened; step k is reached
    # when it happened (again) at or after t_{k-1}.
    t = []
    for k in range(len(funnel_roles)):
        if k == 0:
            t.append("fr0")
        else:
            p = t[k - 1]
            t.append(
                f"CASE WHEN ({p}) IS NOT NULL AND lr{k} >= ({p}) THEN greatest({p}, fr{k}) END"
            )
    # Each t_k nests t_{k-1}: fine for six steps, and it keeps pp a single aggregate.
    ctes = (
        ", pp0 AS (SELECT " + ", ".join(cols) + " FROM pd GROUP BY seg, pid)"
        ", pp AS (SELECT *"
        + "".join(f", {expr} AS t{k}" for k, expr in enumerate(t))
        + " FROM pp0)"
    )

    def secs(a: str, b: str) -> str:
        return f"({a} - {b}) / 1e6"

    entered = {
        0: "(f0 IS NOT NULL OR f1 IS NOT NULL OR f2 IS NOT NULL)",
        1: "f1 IS NOT NULL",
        2: "f2 IS NOT NULL",
        3: "(f3 IS NOT NULL OR fp IS NOT NULL)",
        4: "f4 IS NOT NULL",
    }
    moved = {
        0: "(f1 IS NOT NULL OR f2 IS NOT NULL)",
        1: "f2 IS NOT NULL",
        2: "fp IS NOT NULL",
        3: "orders >= 2",
        4: "FALSE",
    }
    first_next = {0: "least(f1, f2)", 1: "f2", 2: "fp"}
    first_this = {0: "least(f0, f1, f2)", 1: "f1", 2: "f2", 3: "f3", 4: "f4"}
    # One wide row per view, unnested into long rows: a single pass over pp.
    keys: list[str] = []
    ns: list[str] = []
    n2s: list[str] = []
    x1s: list[str] = []
    x2s: list[str] = []
    for i in range(len(STAGES)):
        nxt = first_next.get(i)
        keys.append(f"stage{i}")
        ns.append(f"count(*) FILTER (WHERE {entered[i]})")
        n2s.append(f"count(*) FILTER (WHERE {entered[i]} AND {moved[i]})")
        x1s.append(f"median({secs(f'l{i}', f'f{i}')})")
        x2s.append(
            f"median({secs(nxt, first_this[i])}) FILTER (WHERE {nxt} > {first_this[i]})"
            if nxt is not None
            else "CAST(NULL AS DOUBLE)"
        )
    totals = {
        "persons": "count(*)",
        "buyers": "count(*) FILTER (WHERE orders > 0)",
        "orders": "sum(orders)",
        "repeat_buyers": "count(*) FILTER (WHERE orders >= 2)",
        "viewers": "count(*) FILTER (WHERE first_product_view IS NOT NULL)",
        "viewers_who_added": "count(*) FILTER (WHERE first_product_view IS NOT NULL "
        "AND first_add_to_cart IS NOT NULL)",
        "adders": "count(*) FILTER (WHERE first_add_to_cart IS NOT NULL)",
        "adders_who_ordered": "count(*) FILTER (WHERE first_add_to_cart IS NOT NULL "
        "AND lp >= first_add_to_cart)",
        "checkouts": "count(*) FILTER (WHERE first_checkout IS NOT NULL)",
        "checkouts_who_ordered": "count(*) FILTER (WHERE first_checkout IS NOT NULL "
        "AND lp >= first_checkout)",
        "refunded": "count(*) FILTER (WHERE first_refund IS NOT NULL)",
        "support": "count(*) FILTER (WHERE first_support IS NOT NULL)",
        "reviewers": "count(*) FILTER (WHERE first_review IS NOT NULL)",
        "referrers": "count(*) FILTER (WHERE first_referral IS NOT NULL)",
    }
    for key, expr in totals.items():
        keys.append(key)
        ns.append(expr)
        n2s.append("0")
        x1s.append("CAST(NULL AS DOUBLE)")
        x2s.append("CAST(NULL AS DOUBLE)")
    for k in range(len(funnel_roles)):
        keys.append(f"funnel{k}")
        ns.append(f"count(*) FILTER (WHERE t{k} IS NOT NULL)")
        n2s.append("0")
        x1s.append("CAST(NULL AS DOUBLE)")
        x2s.append("CAST(NULL AS DOUBLE)")

    def lst(items: list[str], cast: str) -> str:
        return "[" + ", ".join(f"CAST({e} AS {cast})" for e in items) + "]"

    wide = (
        "SELECT 'total', seg, NULL, NULL, unnest(k), unnest(a), unnest(b), unnest(c), "
        "unnest(d), money FROM (SELECT seg, "
        + "["
        + ", ".join(f"'{k}'" for k in keys)
        + "] AS k, "
        + lst(ns, "BIGINT")
        + " AS a, "
        + lst(n2s, "BIGINT")
        + " AS b, "
        + lst(x1s, "DOUBLE")
        + " AS c, "
        + lst(x2s, "DOUBLE")
        + " AS d, "
        "CAST(coalesce(sum(rev), 0) AS DECIMAL(18,2)) AS money FROM pp GROUP BY seg) AS w"
    )
    # Where customers who did not move on left: their last action in the stage, counted per
    # action with histogram() in the same single pass over pp.
    drops = ", ".join(
        f"histogram(coalesce(la{i}, last_act)) FILTER (WHERE {entered[i]} AND NOT {moved[i]})"
        for i in range(len(STAGES))
    )
    wide = wide.replace(" AS money FROM pp", f" AS money, [{drops}] AS drops FROM pp")
    wide = wide.replace("unnest(d), money FROM", "unnest(d), money, drops FROM")
    return ctes, [wide]


@dataclass(frozen=True)
class MapQueries:
    """The SQL of one build and how to read its codes back. Every statement returns long
    rows ``(kind, seg, st, code, name, n, n2, x1, x2, money)``."""

    statements: tuple[Sql, ...]
    codes: Codes
    funnel_roles: tuple[str, ...]
    purchase_names: tuple[str, ...] = ()


def map_queries(
    q: MapQuery,
    mapping: StageMapping,
    classes: Mapping[str, EventClass],
    since: datetime,
    until: datetime,
) -> MapQueries:
    """The SQL of a build (pure): ``classes`` are the period's event names, classified.

    Two statements, each reading the events once. The first groups the events per customer,
    stage and action (``pd``, with first and last times: about a quarter of the rows of a
    store's log); the dimensions per stage (customers and events per action and touchpoint)
    and the per-customer summaries ``pp`` (stages, funnel, totals, drop-offs) are read from it
    — far cheaper than distinct counts over the raw events; a stage's customers and events
    come from it too. The second groups the events per customer, stage, visit, channel and
    device (``g``) and counts visits, and customers per channel and device, per stage
    (see :func:`_dims_sql`)."""
    present_roles = {c.role for c in classes.values() if c.role}
    funnel_roles = tuple(r for r in FUNNEL_ROLES if r in present_roles)
    purchase_names = sorted(n for n, c in classes.items() if c.role == _PURCHASE)
    codes = codes_for(classes, mapping)
    base = _ev_cte(q, mapping, classes, codes, since, until, purchase_names)
    # ev is read by one consumer per statement: no need to materialize it.
    base = Sql(base.text.replace("ev AS MATERIALIZED (", "ev AS ("), base.params)
    _check_packable(codes)
    pd, dim_parts, stage_tot = _dims_sql()
    pp_ctes, person_parts = _persons_parts(codes, funnel_roles)
    # The per-customer rows come first: their column types (the drop-off maps) set the union's.
    statements = (
        base + pd + pp_ctes + " " + " UNION ALL ".join(person_parts + dim_parts),
        base + _names_cte(q, since, until) + stage_tot,
    )
    return MapQueries(statements, codes, funnel_roles, tuple(purchase_names))


# ---------------------------------------------------------------------------------------------
# Shaping rows into the map


@dataclass
class _Acc:
    """Everything the two queries return about one view, keyed for shaping."""

    stage_rows: dict[int, tuple[int, int, float | None, float | None]] = field(default_factory=dict)
    stage_totals: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    dims: dict[tuple[int, str], list[tuple[str, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    drops: dict[int, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    funnel: dict[int, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    revenue: Decimal = Decimal("0.00")


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _shares(rows: Iterable[tuple[str, int, int]], top: int) -> tuple[Share, ...]:
    ordered = sorted(rows, key=lambda r: (-r[1], -r[2], r[0]))[:top]
    return tuple(Share(name, Metric(p), Metric(e)) for name, p, e in ordered)


def _kpis(stage: str, a: _Acc) -> tuple[Kpi, ...]:
    t = a.totals
    persons, buyers, orders = t.get("persons", 0), t.get("buyers", 0), t.get("orders", 0)
    if stage == "awareness":
        return (
            Kpi("visitors", "Visitors", Metric(a.stage_rows.get(0, (0, 0, None, None))[0])),
            Kpi("sessions", "Visits", Metric(a.stage_totals.get(0, (0, 0, 0))[2])),
        )
    if stage == "consideration":
        return (
            Kpi("product_viewers", "Customers viewing products", Metric(t.get("viewers", 0))),
            Kpi(
                "add_to_cart_rate",
                "Add-to-cart rate",
                Metric(_rate(t.get("viewers_who_added", 0), t.get("viewers", 0)), "rate"),
            ),
        )
    if stage == "decision":
        aov = (a.revenue / orders).quantize(CENT) if orders else None
        abandoned = t.get("adders", 0) - t.get("adders_who_ordered", 0)
        return (
            Kpi("conversion_rate", "Conversion rate", Metric(_rate(buyers, persons), "rate")),
            Kpi(
                "cart_abandonment_rate",
                "Cart abandonment",
                Metric(_rate(abandoned, t.get("adders", 0)), "rate"),
            ),
            Kpi(
                "checkout_completion_rate",
                "Checkout completion",
                Metric(_rate(t.get("checkouts_who_ordered", 0), t.get("checkouts", 0)), "rate"),
            ),
            Kpi("orders", "Orders", Metric(orders)),
            Kpi("revenue", "Revenue", Metric(a.revenue, "money")),
            Kpi("average_order_value", "Average order value", Metric(aov, "money")),
        )
    if stage == "retention":
        return (
            Kpi("customers", "Buyers", Metric(buyers)),
            Kpi(
                "repeat_purchase_rate",
                "Repeat-purchase rate",
                Metric(_rate(t.get("repeat_buyers", 0), buyers), "rate"),
            ),
            Kpi(
                "refund_rate",
                "Buyers refunded",
                Metric(_rate(t.get("refunded", 0), buyers), "rate"),
            ),
            Kpi("support_contacts", "Customers contacting support", Metric(t.get("support", 0))),
        )
    return (
        Kpi("reviewers", "Customers writing reviews", Metric(t.get("reviewers", 0))),
        Kpi(
            "review_rate", "Buyers who review", Metric(_rate(t.get("reviewers", 0), buyers), "rate")
        ),
        Kpi("referrers", "Customers referring others", Metric(t.get("referrers", 0))),
    )


def _view(
    label: str,
    segment: dict[str, str],
    a: _Acc,
    stages: Sequence[str],
    funnel_roles: Sequence[str],
    role_names: Mapping[str, tuple[str, ...]],
    mapping: StageMapping,
    top: int,
) -> JourneyView:
    views: list[StageView] = []
    flows: list[Flow] = []
    for stage in stages:
        i = _stage_no(stage)
        entered, moved, in_stage, to_next = a.stage_rows.get(i, (0, 0, None, None))
        _, events, sessions = a.stage_totals.get(i, (0, 0, 0))
        # Advocacy ends the map; retention's "moves on" (orders again) counts even without it.
        last = stage == "advocacy"
        dims = {d: _shares(a.dims.get((i, d), []), top) for d in ("act", "tp", "ch", "dev")}
        actions = tuple(
            replace(
                s,
                touchpoint=mapping.classify(s.name).touchpoint
                if not s.name.startswith("$page:")
                else s.name.split(":", 1)[1],
            )
            for s in dims["act"]
        )
        drops = tuple(
            Share(name, Metric(n), Metric(n))
            for name, n in sorted(a.drops.get(i, []), key=lambda r: (-r[1], r[0]))[:3]
        )
        notes = mapping.notes_for(stage)
        views.append(
            StageView(
                stage=stage,
                label=notes.label or STAGE_LABELS[stage],
                entered=Metric(entered),
                moved_on=None if last else Metric(moved),
                dropped=None if last else Metric(entered - moved),
                move_on_rate=None if last else Metric(_rate(moved, entered), "rate"),
                sessions=Metric(sessions),
                events=Metric(events),
                actions=actions,
                touchpoints=dims["tp"],
                channels=dims["ch"],
                devices=dims["dev"],
                drop_offs=() if last else drops,
                median_time_in_stage_seconds=Metric(in_stage, "seconds"),
                median_time_to_next_seconds=None if last else Metric(to_next, "seconds"),
                kpis=_kpis(stage, a),
                next_goal=None if last else NEXT_GOALS[stage],
                notes=notes,
                emotion=Emotion(feelings=notes.feelings),
            )
        )
    # Sankey: each stage to the next (those who moved on) and to "left at <action>".
    labels = {s.stage: s.label for s in views}
    for s in views:
        if s.moved_on is None:
            continue
        if s.stage == "decision":
            flows.append(Flow(s.label, "Purchase", int(s.moved_on.value or 0)))
            if "retention" in labels:
                flows.append(Flow("Purchase", labels["retention"], int(s.moved_on.value or 0)))
        elif s.stage == "retention":
            flows.append(Flow(s.label, "Repeat purchase", int(s.moved_on.value or 0)))
        else:
            nxt = stages[stages.index(s.stage) + 1]
            flows.append(Flow(s.label, labels[nxt], int(s.moved_on.value or 0)))
        if s.dropped is not None and s.dropped.value:
            flows.append(Flow(s.label, f"Left at {s.label.lower()}", int(s.dropped.value)))
    first = a.funnel.get(0, 0)
    funnel: list[FunnelStepView] = []
    for k, role in enumerate(funnel_roles):
        n = a.funnel.get(k, 0)
        prev = a.funnel.get(k - 1, n) if k else n
        funnel.append(
            FunnelStepView(
                name=ROLE_LABELS.get(role, role),
                role=role,
                events=role_names.get(role, ()),
                persons=Metric(n),
                conversion=Metric(_rate(n, first), "rate"),
                dropped=Metric(prev - n),
            )
        )
    t = a.totals
    return JourneyView(
        label=label,
        segment=segment,
        persons=Metric(t.get("persons", 0)),
        orders=Metric(t.get("orders", 0)),
        revenue=Metric(a.revenue, "money"),
        stages=tuple(views),
        funnel=tuple(funnel),
        flows=tuple(f for f in flows if f.persons > 0),
    )


ROLE_LABELS: Final[dict[str, str]] = {
    "page_view": "Visited the store",
    "product_view": "Viewed a product",
    "add_to_cart": "Added to cart",
    "checkout": "Started checkout",
    "payment": "Entered payment",
    "purchase": "Ordered",
}


def action_label(name: str) -> str:
    """How an action reads on the map: page views by touchpoint, other events by name."""
    if name.startswith("$page:"):
        return f"page view ({name.split(':', 1)[1].replace('_', ' ')})"
    return name


def _int(v: Any) -> int:
    return int(v) if v is not None else 0


def _float(v: Any) -> float | None:
    return float(v) if v is not None else None


# ---------------------------------------------------------------------------------------------
# Running


PainPointFinder = Callable[
    [Backend, StageMapping, MapQuery, datetime, datetime, Mapping[str, str]],
    Sequence[PainPointView],
]


def period_of(backend: Backend, q: MapQuery) -> tuple[datetime, datetime]:
    """The period to draw: the query's, its open ends filled from the workspace's events."""
    if q.since is not None and q.until is not None:
        return q.since, q.until
    ((lo, hi),) = backend.fetch(
        "SELECT min(timestamp), max(timestamp) FROM events WHERE workspace_id = ?",
        (q.workspace_id,),
    )
    if lo is None:
        raise InputError(f"workspace {q.workspace_id!r} has no events yet; import some first")
    since = q.since or lo.replace(hour=0, minute=0, second=0, microsecond=0)
    until = q.until or (hi + timedelta(microseconds=1))
    return since, until


def event_names(
    backend: Backend, workspace_id: str, since: datetime, until: datetime
) -> dict[str, int]:
    """Event name → number of events in the period."""
    rng = date_range_sql(since, until)
    rows = backend.fetch(
        f"SELECT event, count(*) FROM events WHERE workspace_id = ? AND {rng.text} GROUP BY event",
        (workspace_id, *rng.params),
    )
    return {str(name): int(n) for name, n in rows}


def _currency(
    backend: Backend, workspace_id: str, since: datetime, until: datetime, names: Sequence[str]
) -> str | None:
    """The currency of most orders in the period."""
    if not names:
        return None
    marks = ", ".join("?" for _ in names)
    rng = date_range_sql(since, until)
    rows = backend.fetch(
        f"SELECT currency, count(*) AS n FROM events WHERE workspace_id = ? AND event IN ({marks}) "
        f"AND currency IS NOT NULL AND {rng.text} GROUP BY currency ORDER BY n DESC, currency "
        "LIMIT 1",
        (workspace_id, *names, *rng.params),
    )
    return str(rows[0][0]) if rows else None


def _segment_of(q: MapQuery) -> dict[str, str]:
    return {c.key: c.value for c in q.conditions}


def build_map(
    backend: Backend,
    q: MapQuery,
    mapping: StageMapping,
    *,
    now: datetime,
    find_pain_points: PainPointFinder | None = None,
) -> JourneyMap:
    """The journey map of the query's period (and the previous period when asked)."""
    q = validate(q)
    if backend.dialect != "duckdb":
        # The map's SQL leans on DuckDB aggregates (arg_max, histogram, list unnesting).
        raise ConfigError(
            f"the journey map runs on the DuckDB analytics store, not on {backend.dialect} yet"
        )
    since, until = period_of(backend, q)
    current = _build_period(backend, q, mapping, since, until, now, find_pain_points)
    if not q.compare_previous:
        return current
    from wayline.journeymap.compare import attach_previous

    length = until - since
    # The previous period is drawn for the same views, even where it had none of their
    # customers, so that every figure has something to compare with.
    values = q.breakdown_values
    if q.breakdown is not None and not values:
        key = _canonical_key(q.breakdown)
        values = tuple(v.segment[key] for v in current.views if key in v.segment)
    previous = _build_period(
        backend,
        replace(q, with_pain_points=False, breakdown_values=values),
        mapping,
        since - length,
        since,
        now,
        None,
    )
    return attach_previous(current, previous)


def _build_period(
    backend: Backend,
    q: MapQuery,
    mapping: StageMapping,
    since: datetime,
    until: datetime,
    now: datetime,
    find_pain_points: PainPointFinder | None,
) -> JourneyMap:
    names = event_names(backend, q.workspace_id, since, until)
    classes = {n: mapping.classify(n) for n in names}
    unknown = tuple(
        UnknownEvent(n, names[n], c.stage, c.touchpoint)
        for n, c in sorted(classes.items(), key=lambda kv: (-names[kv[0]], kv[0]))
        if not c.known
    )
    stages = mapping.stages_present(names)
    role_names: dict[str, tuple[str, ...]] = {
        r: mapping.names_with_role(r, names) for r in FUNNEL_ROLES
    }
    queries = map_queries(q, mapping, classes, since, until)
    accs: dict[str, _Acc] = defaultdict(_Acc)
    if names:
        codes = queries.codes
        rows = [r for sql in queries.statements for r in backend.fetch(sql.text, sql.params)]
        for kind, seg, _, _, name, n, n2, x1, x2, money, drops in rows:
            if kind != "total":
                continue
            a = accs[str(seg)]
            if str(name).startswith("stage"):
                a.stage_rows[int(str(name)[5:])] = (_int(n), _int(n2), _float(x1), _float(x2))
                a.revenue = Decimal(money or 0).quantize(CENT)
                for st, hist in enumerate(drops):
                    a.drops[st] = [(codes.action(int(k)), int(v)) for k, v in (hist or {}).items()]
            elif str(name).startswith("funnel"):
                a.funnel[int(str(name)[6:])] = _int(n)
            else:
                a.totals[str(name)] = _int(n)
        for kind, seg, st, code, name, n, n2, x1, _x2, _money, _drops in rows:
            a = accs[str(seg)]
            if kind == "act":
                a.dims[(int(st), "act")].append((codes.action(int(code)), int(n), int(n2)))
            elif kind == "tp":
                a.dims[(int(st), "tp")].append((codes.touchpoints[int(code)], int(n), int(n2)))
            elif kind in ("ch", "dev"):
                a.dims[(int(st), kind)].append((str(name), int(n), int(n2)))
            elif kind == "stage_tot":
                a.stage_totals[int(st)] = (int(n), int(n2), int(x1 or 0))
        for a in accs.values():
            # A stage's events: those of its actions (see _dims_sql).
            for i, (_, _, sessions) in list(a.stage_totals.items()):
                events = sum(e for _, _, e in a.dims.get((i, "act"), []))
                a.stage_totals[i] = (0, events, sessions)
    currency = _currency(backend, q.workspace_id, since, until, queries.purchase_names)
    base_segment = _segment_of(q)
    if q.breakdown is None:
        keys = ["all"]
    else:
        wanted = (
            list(q.breakdown_values)
            or sorted(accs, key=lambda s: (-accs[s].totals.get("persons", 0), s))[:2]
        )
        keys = [k for k in wanted]
    views: list[JourneyView] = []
    for key in keys:
        a = accs.get(key, _Acc())
        if q.breakdown is None:
            segment = base_segment
            label = _label(base_segment)
        else:
            segment = {**base_segment, _canonical_key(q.breakdown): key}
            label = _label({_canonical_key(q.breakdown): key})
        view = _view(label, segment, a, stages, queries.funnel_roles, role_names, mapping, q.top)
        if q.with_pain_points and find_pain_points is not None:
            found = find_pain_points(backend, mapping, q, since, until, segment)
            view = replace(view, pain_points=tuple(found))
        views.append(view)
    note = (
        "No survey scores yet: the emotion lane shows only what you wrote in journeymap.yaml "
        "(stages: <stage>: feelings). Surveys will fill it in."
    )
    return JourneyMap(
        workspace_id=q.workspace_id,
        since=since,
        until=until,
        generated_at=now,
        views=tuple(views),
        unknown_events=unknown,
        emotion_note=note,
        mapping_sources=mapping.sources,
        currency=currency,
        pain_points_note=""
        if find_pain_points is not None or not q.with_pain_points
        else "Pain-point detection is not available in this build.",
    )


def _label(segment: Mapping[str, str]) -> str:
    if not segment:
        return ALL_LABEL
    return ", ".join(
        f"{k.replace('_type', '').replace('traits.', '')}: {v}" for k, v in segment.items()
    )
