"""Visits (sessions) summarised once, shared by the step, loop, error and channel detectors.

One query turns the period's events into one row per visit — the resolved customer plus the
session (:mod:`wayline.analytics.sessions`: the SDK's ``session_id``, else 30 minutes of
inactivity) — and then into a **cube**: visits counted per combination of segment values
(device type, OS, channel, country, up to three profile traits). Every segment comparison is
then a sum over cells in Python, which lets a detector compare "mobile" with "the rest", and
then "France" with "the rest among non-mobile visits", without another query.

Per visit, with the funnel roles ranked ``product_view`` 1, ``add_to_cart``/``cart_view`` 2,
``checkout``/``checkout_step`` 3, ``payment`` 4, ``purchase`` 5:

- ``has_<i>``: the visit has an event of funnel role *i*;
- ``step_<i>_<j>``: it has role *i* and an event of role *j* at or after the first *i*;
- ``err_<k>``/``sup_<k>``: an error-role (or support) event whose furthest funnel rank reached
  *before* it is *k*: the error *follows* step *k*;
- ``back_<k>``: after reaching rank *k* (checkout or later), an event of a lower funnel rank —
  the customer was sent backwards (e.g. from checkout to the cart);
- ``views``: product views; ``bought``: the visit has a purchase.

A visit is a session with at least one browsing event (a page or product view, a cart or
checkout event): server-side events (deliveries, e-mail opens) form no visit. A visit's segment
values are those of its browsing events (the smallest, should they differ).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any, Literal

from wayline.analytics.filters import latest_trait_sql
from wayline.analytics.query import CompiledQuery, Params
from wayline.analytics.sessions import sessionize_sql
from wayline.journeymap.detectors.base import (
    BROWSE_ROLES,
    ERROR_ROLES,
    FUNNEL,
    StoreView,
    dimension_sql,
    in_list,
)

RANK = {role: i + 1 for i, role in enumerate(FUNNEL)}
#: Roles that sit at a funnel rank without being a funnel step of their own.
EXTRA_RANK = {"cart_view": RANK["add_to_cart"], "checkout_step": RANK["checkout"]}
#: Ranks from which a move to a lower rank counts as being sent backwards (checkout, payment).
BACK_FROM = (RANK["checkout"], RANK["payment"])


def steps(view: StoreView) -> list[tuple[int, int]]:
    """Consecutive funnel steps (rank from, rank to) among the roles the store tracks."""
    ranks = [RANK[r] for r in view.profile.funnel()]
    return list(pairwise(ranks))


def _ranks(view: StoreView) -> list[int]:
    return [RANK[r] for r in view.profile.funnel()]


def _visit_key(view: StoreView) -> list[str]:
    """The columns that identify a visit in ``tagged``, ``ranked`` and ``fl``. On DuckDB one
    64-bit hash of (person, session key): sorting and grouping on it is twice as fast as on the
    two strings, and two of a store's million visits collide with a probability of ~1e-7.
    Elsewhere the two columns."""
    return ["vk"] if view.dialect == "duckdb" else ["person_id", "session_key"]


def _who(view: StoreView, column: str) -> str:
    """The customer as the visit summary counts them: on DuckDB a 64-bit hash of ``column``
    (``person_id`` is text of 14 characters or more, too long to be stored inline: grouping and
    counting distinct customers on the hash cost about a tenth less on 10 M events), elsewhere
    the column itself."""
    return f"hash({column})" if view.dialect == "duckdb" else column


def _codes(view: StoreView) -> list[tuple[str, int, int, int, int, int]]:
    """Pure: per event name of the store, ``(name, browse, rnk, fr, err, sup)`` (see
    :func:`_tagged_sql`); names without any of them are left out."""
    prof = view.profile
    out = []
    for name in sorted(prof.event_counts):
        role = view.context.mapping.role(name)
        if role is None:
            continue
        rank = RANK.get(role, EXTRA_RANK.get(role, 0))
        codes = (
            int(role in BROWSE_ROLES),
            rank if prof.has(role) else 0,
            RANK.get(role, 0),
            int(role in ERROR_ROLES),
            int(role == "support"),
        )
        if any(codes):
            out.append((name, *codes))
    return out


def _tagged_sql(view: StoreView, p: Params, *, rows: Literal["flagged", "visit"]) -> str:
    """``SELECT`` of the period's events with their visit key (:func:`_visit_key`), the
    person, the time, the segment columns, and small integers that the event name stands for:
    funnel rank ``rnk`` (cart views and checkout steps at the rank of their step), ``fr`` (the
    rank of the funnel role itself, 0 for the others) and flags ``browse``/``err``/``sup``.

    The integers come from joining a ``VALUES`` table of the store's event names (from the
    profile) rather than from ``CASE`` chains over the name: one hash probe per event instead
    of a dozen string comparisons. A name the profile has not seen gets zeros, as it would
    from the chains.

    Only some rows matter to each caller: those that can raise a flag (``rows="flagged"``,
    :data:`_FLAGGED`) or those that make a visit and its measures (``"visit"``: browsing or
    funnel events; a server-side event adds nothing to a visit). The caller keeps the rows it
    needs. For the flagged rows, a third of a store's, rows with a session id are read only if
    their name can raise a flag (rows without one are all read: they all count in the inferred
    sessions' gaps). The visit rows are nearly all of them (9.4 M of the 9.6 M with a session
    id on 10 M events): testing their names costs more than the rows it drops (0.17 s of CPU).
    """
    codes = _codes(view)
    where = view.where(p)
    if rows == "flagged":
        names = [name for name, _b, rnk, _f, err, sup in codes if rnk or err or sup]
        where += f" AND (session_id IS NULL OR {in_list(p, 'event', names)})"
    source = (
        "(SELECT person_id, session_id, timestamp, event, device_type, os, channel, country "
        f"FROM events WHERE {where})"
    )
    key = "hash(person_id, session_key) AS vk" if view.dialect == "duckdb" else "session_key"
    who = _who(view, "person_id")
    # ``ev``: the name's position in ``codes``, from 1 (the follow-up counts carry it instead
    # of the name: 3.5 M fewer strings to keep on 10 M events).
    cols = ("browse", "rnk", "fr", "err", "sup", "ev")
    if not codes:
        picked = ", ".join(f"0 AS {c}" for c in cols)
        joined = ""
    else:
        table = ", ".join(
            f"({p(name)}, {', '.join(str(v) for v in values)}, {i})"
            for i, (name, *values) in enumerate(codes, start=1)
        )
        picked = ", ".join(f"coalesce(_c.{c}, 0) AS {c}" for c in cols)
        joined = (
            f"LEFT JOIN (VALUES {table}) AS _c(name, {', '.join(cols)}) ON _c.name = _sx2.event"
        )
    return f"""
                SELECT {key}, person_id, {who} AS who, timestamp AS ts, event,
                       device_type, os, channel, country, {picked}
                FROM ({sessionize_sql(source)}) AS _sx2 {joined}"""


#: A part of :func:`summary_query`: its name, text columns, integer columns, ``FROM`` and rest.
Part = tuple[str, list[str], list[str], str]

#: The rows of ``tagged`` that can raise a flag: only they need ``reached``.
_FLAGGED = "rnk > 0 OR err = 1 OR sup = 1"


def _flagged_sql(view: StoreView, p: Params) -> str:
    """``SELECT`` of the events that can raise a flag: rows of rank 0 without an error or
    support role are left out (they add nothing to a running maximum of ranks and raise no
    flag). Every funnel event is among the rows kept (a funnel role has a rank), so the
    visit's funnel times are read from here too."""
    key = ", ".join(_visit_key(view))
    return f"""
            SELECT {key}, ts, ev, rnk, fr, err, sup
            FROM ({_tagged_sql(view, p, rows="flagged")}) AS _t WHERE {_FLAGGED}"""


def _ranked_sql(view: StoreView) -> str:
    """``SELECT`` of the ``tf`` rows of the visits that can raise a flag (see
    :func:`_visits_ctes`), with ``reached``: the highest rank of the visit's events strictly
    before this one."""
    key = _visit_key(view)
    keys = ", ".join(f"tf.{k}" for k in key)
    on = " AND ".join(f"w.{k} = tf.{k}" for k in key)
    return f"""
            SELECT {keys}, tf.ev, tf.rnk, tf.err, tf.sup,
                   coalesce(max(tf.rnk) OVER (
                       PARTITION BY {keys} ORDER BY tf.ts
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS reached
            FROM tf JOIN (SELECT {", ".join(key)} FROM fv
                          WHERE top >= {min(BACK_FROM)} OR alarm = 1) AS w ON {on}"""


def _visits_ctes(view: StoreView, p: Params) -> list[str]:
    """CTEs ``tf``, ``fv``, ``ranked``, ``fl``, ``agg`` and ``vis`` (one row per visit, see the
    module docstring, with the visit's segment values ``d0``, ``d1``… in the order of the
    profile's dimensions), with markers of ``p``.

    The visit's product views and funnel times come from ``tf`` (the funnel, error and support
    events: a third of the rows) grouped per visit (``fv``); the visit itself and its segment
    values from one plain aggregate of every browsing event, which then updates 6 aggregates
    per row instead of 17 (on 10 M events that aggregate was 2.9 s of the query's 14 s of CPU).

    The flags need each event's ``reached`` — a window sorted per visit — but only in visits
    that can raise one: with an error or support event, or reaching checkout (a step back is
    from checkout or later). Other visits' flags are 0. Sorting only those visits' events
    rather than all of ``tf`` (3.5 M rows on 10 M events) is most of the window's cost saved.
    """
    role_cols = []
    for role in view.profile.funnel():
        i = RANK[role]
        role_cols.append(f"min(CASE WHEN fr = {i} THEN ts END) AS f_{i}")
        role_cols.append(f"max(CASE WHEN fr = {i} THEN ts END) AS l_{i}")
    dims = ", ".join(
        f"min(CASE WHEN browse = 1 THEN {d} END) AS {d}"
        for d in ("device_type", "os", "channel", "country")
    )
    flags = []
    for k in _ranks(view):
        flags.append(f"max(CASE WHEN err = 1 AND reached = {k} THEN 1 ELSE 0 END) AS err_{k}")
        flags.append(f"max(CASE WHEN sup = 1 AND reached = {k} THEN 1 ELSE 0 END) AS sup_{k}")
    for k in BACK_FROM:
        flags.append(
            f"max(CASE WHEN rnk > 0 AND rnk < reached AND reached = {k} THEN 1 ELSE 0 END) "
            f"AS back_{k}"
        )
    flag_names = [f.rsplit(" AS ", 1)[1] for f in flags]
    views = f"sum(CASE WHEN rnk = {RANK['product_view']} THEN 1 ELSE 0 END) AS views"
    alarm = "max(CASE WHEN err = 1 OR sup = 1 THEN 1 ELSE 0 END) AS alarm"
    # A visit without a flagged row has no row in ``fv`` (its views are 0, its funnel times
    # NULL), one that cannot raise a flag none in ``fl`` (its flags are 0).
    carried = "".join(f", coalesce(fl.{n}, 0) AS {n}" for n in flag_names)
    carried += ", coalesce(fv.views, 0) AS views"
    carried += "".join(f", fv.{c.rsplit(' AS ', 1)[1]}" for c in role_cols)
    key = _visit_key(view)
    keys = ", ".join(key)
    on_fv = " AND ".join(f"fv.{k} = agg.{k}" for k in key)
    on_fl = " AND ".join(f"fl.{k} = agg.{k}" for k in key)
    # On DuckDB the person rides along the visit key (any value: the key's person); elsewhere
    # it is part of the key.
    person = "any_value(who) AS who, " if view.dialect == "duckdb" else "person_id AS who, "
    return [
        # Two reads of the events rather than one shared CTE: materializing every event row
        # for two consumers cost more than reading and sessionizing twice.
        f"tf AS MATERIALIZED ({_flagged_sql(view, p)})",
        f"""fv AS MATERIALIZED (
            SELECT {keys}, {", ".join([views, *role_cols])}, max(rnk) AS top, {alarm}
            FROM tf GROUP BY {keys})""",
        f"ranked AS MATERIALIZED ({_ranked_sql(view)})",
        f"""fl AS (
            SELECT {keys}, {", ".join(flags)}
            FROM ranked GROUP BY {keys})""",
        f"""agg AS (
            SELECT {keys}, {person}max(browse) AS visit, {dims}
            FROM ({_tagged_sql(view, p, rows="visit")}) AS _t
            WHERE browse = 1 OR fr > 0
            GROUP BY {keys})""",
        f"""vis AS MATERIALIZED (
            SELECT agg.*{carried}{_dimension_columns(view)}
            FROM agg LEFT JOIN fv ON {on_fv} LEFT JOIN fl ON {on_fl}"""
        f"""{_trait_joins(view, p, "agg")})""",
    ]


def _has(i: int) -> str:
    return f"(f_{i} IS NOT NULL)"


def _step(i: int, j: int) -> str:
    return f"(f_{i} IS NOT NULL AND l_{j} >= f_{i})"


def measures(view: StoreView) -> dict[str, str]:
    """Name → per-visit 0/1 (or count) expression over the ``vis`` CTE's columns."""
    ranks = _ranks(view)
    out: dict[str, str] = {"visits": "1", "views": "views"}
    bought = _has(RANK["purchase"]) if RANK["purchase"] in ranks else "FALSE"
    out["bought"] = f"CASE WHEN {bought} THEN 1 ELSE 0 END"
    for k in ranks:
        out[f"has_{k}"] = f"CASE WHEN {_has(k)} THEN 1 ELSE 0 END"
        out[f"err_{k}"] = f"err_{k}"
        out[f"sup_{k}"] = f"sup_{k}"
        out[f"err_{k}_bought"] = f"CASE WHEN err_{k} = 1 AND {bought} THEN 1 ELSE 0 END"
        out[f"sup_{k}_bought"] = f"CASE WHEN sup_{k} = 1 AND {bought} THEN 1 ELSE 0 END"
        out[f"has_{k}_bought"] = f"CASE WHEN {_has(k)} AND {bought} THEN 1 ELSE 0 END"
    for i, j in steps(view):
        out[f"step_{i}_{j}"] = f"CASE WHEN {_step(i, j)} THEN 1 ELSE 0 END"
    for k in BACK_FROM:
        if k in ranks:
            out[f"back_{k}"] = f"back_{k}"
            out[f"back_{k}_bought"] = f"CASE WHEN back_{k} = 1 AND {bought} THEN 1 ELSE 0 END"
    return out


@dataclass(frozen=True)
class Cell:
    """Visits sharing one combination of segment values, and their summed measures."""

    values: Mapping[str, str | None]
    counts: Mapping[str, int]


def _trait_joins(view: StoreView, p: Params, alias: str) -> str:
    """``LEFT JOIN``s of each profile trait dimension's latest value, on ``<alias>.who``."""
    joins = []
    for d in view.profile.dimensions:
        if d.startswith("traits."):
            trait = latest_trait_sql(
                tuple(d.split(".")[1:]),
                workspace_id=view.context.workspace_id,
                dialect=view.dialect,
            )
            j = f"j_{dimension_sql(d)}"
            joins.append(
                f" LEFT JOIN (SELECT {_who(view, '_tr.person_id')} AS who, _tr.value "
                f"FROM ({p.embed(trait)}) AS _tr) AS {j} ON {j}.who = {alias}.who"
            )
    return "".join(joins)


def _dimension_columns(view: StoreView) -> str:
    """``, <value> AS d0, …``: the visit's value of each of the profile's dimensions."""
    dims = view.profile.dimensions
    exprs = [f"j_{dimension_sql(d)}.value" if d.startswith("traits.") else f"agg.{d}" for d in dims]
    return "".join(f", CAST({e} AS VARCHAR) AS d{i}" for i, e in enumerate(exprs))


def _cube_parts(view: StoreView) -> tuple[str, list[Part]]:
    """The ``pv`` CTE and the parts of :func:`summary_query` that make the cube.

    A cell's measures are plain sums over its visits, grouped by the segment values straight
    from ``vis`` (a few thousand groups). The exact distinct customers of each single
    dimension's value, in all and per funnel rank (summing cells would count a customer seen
    on two devices twice), come from ``pv`` — visits grouped per customer and combination of
    segment values, with a flag per funnel rank — grouped once more per dimension. ``pv``
    carries only those few flags: with every measure summed per customer as well (50 sums in
    each of 740 000 groups on 10 M events) it cost 4 s of the query's 10. (A ``count(DISTINCT
    …)`` per grouping set made 36 hash tables of every visit: 19 s of 27 on 10 M events.)
    """
    dims = view.profile.dimensions
    cols = [f"d{i}" for i in range(len(dims))]
    m = measures(view)
    ranks = _ranks(view)
    has = [f"max(CASE WHEN {_has(k)} THEN 1 ELSE 0 END) AS h_{k}" for k in ranks]
    group = ", ".join(cols)
    pv = f"""pv AS MATERIALIZED (
            SELECT who, {group}{"".join(f", {h}" for h in has)}
            FROM vis WHERE visit = 1
            GROUP BY who, {group})"""
    people = [f"sum(h_{k})" for k in ranks]
    parts: list[Part] = [
        (
            "cell",
            cols,
            [f"sum({expr})" for expr in m.values()],
            f"FROM vis WHERE visit = 1 GROUP BY {group}",
        ),
    ]
    for i, c in enumerate(cols):
        parts.append(
            (
                "segment",
                [f"'{i}'", c],
                ["count(*)", *people],
                f"""FROM (
            SELECT who, {c}, {", ".join(f"max(h_{k}) AS h_{k}" for k in ranks)}
            FROM pv WHERE {c} IS NOT NULL GROUP BY who, {c}) AS _d{i}
        GROUP BY {c}""",
            )
        )
    return pv, parts


def summary_query(view: StoreView) -> CompiledQuery:
    """Everything the visit-based detectors read, from one pass over the period's events (the
    sessionizing, the ranks and the per-visit rows are computed once, not once per part).

    Rows are ``(part, t_1 … t_T, i_1 … i_I)``, text and integer columns padded with NULLs:

    - ``cell``: the dimensions' values; each :func:`measures` measure;
    - ``segment``: the dimension's position and a value of it; its customers, customers per
      funnel rank;
    - ``daily``: per funnel step and UTC day of the step's first event (days since
      1970-01-01): step from, step to, day, visits at the step, how many went on to the next
      step, customers;
    - ``follow``: which error (``err``), support (``sup``) and backward (``back``) events
      follow which funnel rank, and how often: kind; rank, count, event (its position in
      :func:`_codes`, from 1).
    """
    p = Params()
    ctes = _visits_ctes(view, p)
    pv, parts = _cube_parts(view)
    ctes.append(pv)
    for i, j in steps(view):
        # epoch() is seconds since 1970-01-01 UTC, whatever the session's time zone.
        day = f"CAST(floor(epoch(f_{i}) / 86400) AS BIGINT)"
        parts.append(
            (
                "daily",
                [],
                [
                    str(i),
                    str(j),
                    day,
                    "count(*)",
                    f"sum(CASE WHEN {_step(i, j)} THEN 1 ELSE 0 END)",
                    "count(DISTINCT who)",
                ],
                f"FROM vis WHERE f_{i} IS NOT NULL GROUP BY {day}",
            )
        )
    kind = "CASE WHEN err = 1 THEN 'err' WHEN sup = 1 THEN 'sup' ELSE 'back' END"
    parts.append(
        (
            "follow",
            [kind],
            ["reached", "count(*)", "ev"],
            f"""FROM ranked
        WHERE reached > 0 AND (err = 1 OR sup = 1 OR (rnk > 0 AND rnk < reached))
        GROUP BY reached, {kind}, ev""",
        )
    )
    n_text = max(len(t) for _, t, _, _ in parts)
    n_int = max(len(i) for _, _, i, _ in parts)
    selects = []
    for name, texts, ints, rest in parts:
        cols = [f"'{name}'"]
        cols += texts + ["CAST(NULL AS VARCHAR)"] * (n_text - len(texts))
        cols += [f"CAST({e} AS BIGINT)" for e in ints]
        cols += ["CAST(NULL AS BIGINT)"] * (n_int - len(ints))
        selects.append(f"SELECT {', '.join(cols)} {rest}")
    sql = "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(selects)
    return p.compile(sql)


@dataclass(frozen=True)
class Cube:
    cells: list[Cell]
    segments: dict[tuple[str, str], Mapping[str, int]]
    """(dimension, value) → exact distinct customers: ``persons`` (visits) and ``persons_<k>``
    (visits at funnel rank *k*)."""


@dataclass(frozen=True)
class DayCount:
    step: tuple[int, int]
    day: date
    n: int
    k: int
    persons: int


@dataclass(frozen=True)
class Summary:
    cube: Cube
    daily: list[DayCount]
    followers: dict[tuple[int, str], str]
    """(rank, kind) → the most frequent event name of that kind following that rank."""


EPOCH = date(1970, 1, 1)


def summary_from_rows(view: StoreView, rows: Sequence[Sequence[Any]]) -> Summary:
    """Pure but for the view's profile: :func:`summary_query`'s rows → a :class:`Summary`."""
    dims = view.profile.dimensions
    n_text = max(len(dims), 2)
    names = list(measures(view))
    per_rank = [f"persons_{k}" for k in _ranks(view)]
    names_of = [""] + [code[0] for code in _codes(view)]
    cells: list[Cell] = []
    segments: dict[tuple[str, str], Mapping[str, int]] = {}
    days: list[DayCount] = []
    best: dict[tuple[int, str], tuple[int, str]] = {}
    for row in rows:
        part, texts, ints = row[0], row[1 : 1 + n_text], row[1 + n_text :]
        if part == "cell":
            values = {d: (None if v is None else str(v)) for d, v in zip(dims, texts, strict=False)}
            cells.append(Cell(values, {k: int(v or 0) for k, v in zip(names, ints, strict=False)}))
        elif part == "segment":
            counts = {k: int(v or 0) for k, v in zip(per_rank, ints[1:], strict=False)}
            segments[(dims[int(texts[0])], str(texts[1]))] = {"persons": int(ints[0]), **counts}
        elif part == "daily":
            i, j, day, visits, k, persons = (int(x or 0) for x in ints[:6])
            days.append(DayCount((i, j), EPOCH + timedelta(days=day), visits, k, persons))
        else:
            key = (int(ints[0]), str(texts[0]))
            candidate = (int(ints[1]), names_of[int(ints[2])])
            if key not in best or candidate > best[key]:
                best[key] = candidate
    followers = {k: v[1] for k, v in best.items()}
    return Summary(Cube(cells, segments), days, followers)


def summary(view: StoreView) -> Summary:
    """The visit summary of the view (fetched once per view)."""

    def build() -> Summary:
        if not view.profile.funnel():
            return Summary(Cube([], {}), [], {})  # no funnel event: no visits
        return summary_from_rows(view, view.fetch(summary_query(view)))

    result: Summary = view.cached("summary", build)
    return result


def cube(view: StoreView) -> list[Cell]:
    """The store's visit cube (fetched once per view)."""
    return summary(view).cube.cells


def segment_customers(view: StoreView, dimension: str, value: str, measure: str) -> int:
    """Distinct customers of a segment (``measure``: ``persons`` or ``persons_<rank>``)."""
    return int(summary(view).cube.segments.get((dimension, value), {}).get(measure, 0))


def daily(view: StoreView) -> list[DayCount]:
    """Per funnel step and UTC day: visits at the step and how many went on."""
    return summary(view).daily


def total(cells: Iterable[Cell], name: str) -> int:
    return sum(c.counts.get(name, 0) for c in cells)


def subset(cells: Sequence[Cell], dim: str, value: str) -> tuple[list[Cell], list[Cell]]:
    """(cells in the segment ``dim = value``, cells with another non-empty value)."""
    inside = [c for c in cells if c.values.get(dim) == value]
    rest = [c for c in cells if c.values.get(dim) not in (None, value)]
    return inside, rest


def values_of(cells: Iterable[Cell], dim: str) -> list[str]:
    return sorted({v for c in cells if (v := c.values.get(dim)) is not None})
