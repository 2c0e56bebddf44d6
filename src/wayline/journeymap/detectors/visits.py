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
from datetime import UTC, date, datetime
from itertools import pairwise

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


def ranked_sql(view: StoreView, p: Params) -> str:
    """``SELECT`` of the period's events with their visit (``session_key``), funnel rank
    ``rnk``, flags ``browse``/``err``/``sup``, and ``reached``: the highest rank of the visit's
    events strictly before this one."""
    prof = view.profile
    rank_cases = []
    for role, rank in [*RANK.items(), *EXTRA_RANK.items()]:
        if prof.has(role):
            rank_cases.append(f"WHEN {in_list(p, 'event', prof.names(role))} THEN {rank}")
    rank_sql = f"CASE {' '.join(rank_cases)} ELSE 0 END" if rank_cases else "0"
    source = (
        "(SELECT person_id, session_id, timestamp, event, device_type, os, channel, country "
        f"FROM events WHERE {view.where(p)})"
    )
    return f"""
            SELECT r.*, coalesce(max(rnk) OVER (
                       PARTITION BY person_id, session_key ORDER BY ts
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS reached
            FROM (
                SELECT person_id, session_key, timestamp AS ts, event,
                       device_type, os, channel, country,
                       CASE WHEN {in_list(p, "event", prof.names(*BROWSE_ROLES))}
                            THEN 1 ELSE 0 END AS browse,
                       {rank_sql} AS rnk,
                       CASE WHEN {in_list(p, "event", prof.names(*ERROR_ROLES))}
                            THEN 1 ELSE 0 END AS err,
                       CASE WHEN {in_list(p, "event", prof.names("support"))}
                            THEN 1 ELSE 0 END AS sup
                FROM ({sessionize_sql(source)}) AS _sx2
            ) AS r"""


def visits_sql(view: StoreView, p: Params) -> str:
    """``SELECT`` of one row per visit (see the module docstring), with markers of ``p``."""
    prof = view.profile
    role_cols = []
    for role in FUNNEL:
        if prof.has(role):
            i = RANK[role]
            names = in_list(p, "event", prof.names(role))
            role_cols.append(f"min(CASE WHEN {names} THEN ts END) AS f_{i}")
            role_cols.append(f"max(CASE WHEN {names} THEN ts END) AS l_{i}")
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
    views = f"sum(CASE WHEN rnk = {RANK['product_view']} THEN 1 ELSE 0 END) AS views"
    return f"""
        SELECT person_id, session_key, max(browse) AS visit, {dims},
               {", ".join([views, *role_cols, *flags])}
        FROM ({ranked_sql(view, p)}) AS ranked
        GROUP BY person_id, session_key"""


def _has(i: int) -> str:
    return f"(f_{i} IS NOT NULL)"


def _step(i: int, j: int) -> str:
    return f"(f_{i} IS NOT NULL AND l_{j} >= f_{i})"


def measures(view: StoreView) -> dict[str, str]:
    """Name → per-visit 0/1 (or count) expression over :func:`visits_sql`'s columns."""
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
    persons: int


def cube_query(view: StoreView) -> CompiledQuery:
    """Visits per combination of segment values (the dimensions of the store's profile).

    Grouping sets add one row per value of each single dimension, whose distinct-customer
    counts are exact (summing cells would count a customer seen on two devices twice); the
    ``gid`` column (``GROUPING()``) tells the rows apart.
    """
    p = Params()
    dims = view.profile.dimensions
    joins = []
    for d in dims:
        if d.startswith("traits."):
            trait = latest_trait_sql(
                tuple(d.split(".")[1:]),
                workspace_id=view.context.workspace_id,
                dialect=view.dialect,
            )
            alias = dimension_sql(d)
            joins.append(
                f"LEFT JOIN ({p.embed(trait)}) AS j_{alias} ON j_{alias}.person_id = v.person_id"
            )
    exprs = [f"j_{dimension_sql(d)}.value" if d.startswith("traits.") else f"v.{d}" for d in dims]
    m = measures(view)
    sums = ", ".join(f"sum({expr}) AS {name}" for name, expr in m.items())
    # Distinct customers at each funnel rank: the "customers affected" of a step's segment.
    sums += "".join(
        f", count(DISTINCT CASE WHEN {_has(k)} THEN v.person_id END) AS persons_{k}"
        for k in _ranks(view)
    )
    sets = ", ".join([f"({', '.join(exprs)})", *(f"({e})" for e in exprs)])
    sql = f"""
        SELECT {", ".join(exprs)}, GROUPING({", ".join(exprs)}) AS gid,
               count(DISTINCT v.person_id) AS persons, {sums}
        FROM ({visits_sql(view, p)}) AS v {" ".join(joins)}
        WHERE v.visit = 1
        GROUP BY GROUPING SETS ({sets})"""
    return p.compile(sql)


@dataclass(frozen=True)
class Cube:
    cells: list[Cell]
    segments: dict[tuple[str, str], Mapping[str, int]]
    """(dimension, value) → exact distinct customers: ``persons`` (visits) and ``persons_<k>``
    (visits at funnel rank *k*)."""


def _cube(view: StoreView) -> Cube:
    def build() -> Cube:
        if not view.profile.funnel():
            return Cube([], {})  # a store without a single funnel event has no visits
        dims = view.profile.dimensions
        n = len(dims)
        names = [*measures(view), *(f"persons_{k}" for k in _ranks(view))]
        cells: list[Cell] = []
        segments: dict[tuple[str, str], Mapping[str, int]] = {}
        single = {(2**n - 1) - 2 ** (n - 1 - i): d for i, d in enumerate(dims)}
        for row in view.fetch(cube_query(view)):
            values = {d: (None if v is None else str(v)) for d, v in zip(dims, row, strict=False)}
            gid, persons = int(row[n]), int(row[n + 1])
            counts = {k: int(v or 0) for k, v in zip(names, row[n + 2 :], strict=True)}
            if gid == 0:
                cells.append(Cell(values, counts, persons))
            elif gid in single and (value := values[single[gid]]) is not None:
                people = {k: v for k, v in counts.items() if k.startswith("persons_")}
                segments[(single[gid], value)] = {"persons": persons, **people}
        return Cube(cells, segments)

    result: Cube = view.cached("cube", build)
    return result


def cube(view: StoreView) -> list[Cell]:
    """The store's visit cube (fetched once per view)."""
    return _cube(view).cells


def segment_customers(view: StoreView, dimension: str, value: str, measure: str) -> int:
    """Distinct customers of a segment (``measure``: ``persons`` or ``persons_<rank>``)."""
    return int(_cube(view).segments.get((dimension, value), {}).get(measure, 0))


def daily_query(view: StoreView) -> CompiledQuery:
    """Per funnel step and UTC day of the step's first event: visits at the step, and how many
    went on to the next step."""
    p = Params()
    parts = [
        f"SELECT {i} AS step_from, {j} AS step_to, date_trunc('day', f_{i}) AS day, "
        f"count(*) AS n, sum(CASE WHEN {_step(i, j)} THEN 1 ELSE 0 END) AS k, "
        f"count(DISTINCT person_id) AS persons "
        f"FROM vis WHERE f_{i} IS NOT NULL GROUP BY 1, 2, 3"
        for i, j in steps(view)
    ]
    if not parts:
        return CompiledQuery("SELECT 1 WHERE FALSE")
    sql = f"WITH vis AS ({visits_sql(view, p)}) " + " UNION ALL ".join(parts)
    return p.compile(sql)


@dataclass(frozen=True)
class DayCount:
    step: tuple[int, int]
    day: date
    n: int
    k: int
    persons: int


def daily(view: StoreView) -> list[DayCount]:
    def build() -> list[DayCount]:
        out = []
        for i, j, day, n, k, persons in view.fetch(daily_query(view)):
            d = day.astimezone(UTC).date() if isinstance(day, datetime) else day
            out.append(DayCount((int(i), int(j)), d, int(n), int(k or 0), int(persons)))
        return out

    result: list[DayCount] = view.cached("daily", build)
    return result


def total(cells: Iterable[Cell], name: str) -> int:
    return sum(c.counts.get(name, 0) for c in cells)


def subset(cells: Sequence[Cell], dim: str, value: str) -> tuple[list[Cell], list[Cell]]:
    """(cells in the segment ``dim = value``, cells with another non-empty value)."""
    inside = [c for c in cells if c.values.get(dim) == value]
    rest = [c for c in cells if c.values.get(dim) not in (None, value)]
    return inside, rest


def values_of(cells: Iterable[Cell], dim: str) -> list[str]:
    return sorted({v for c in cells if (v := c.values.get(dim)) is not None})
