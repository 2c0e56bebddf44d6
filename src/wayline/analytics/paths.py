"""Paths: how customers move from event to event — transitions, Sankey paths and top paths.

Definitions (the tests check each against a brute-force reference on random logs):

**Sequence.** The events of the workspace in ``[since, until)`` that pass the property filters
(:mod:`wayline.analytics.filters`) are grouped per *unit*: a person (``person_id``, the customer
after identity resolution) or, with ``by="session"``, a session of a person
(:mod:`wayline.analytics.sessions`; sessions are cut before any exclusion). Each event gets an
*item* name:

- ``item="event"``: the ``event`` column;
- ``item="event_or_page"`` (default): the ``page_path`` for page and screen calls (``$page``,
  ``$screen``) that have one, else the ``event`` column — PostHog's mix of page views and events.

Grouping rules then rename items: the first rule whose regular expression matches the *whole* item
(``/product/.*``) replaces it by the rule's name (``product_view``). Events whose item, before or
after grouping, is in ``exclude`` are dropped. A unit's events are ordered by time, and events at
the same instant by their item name *before* grouping (rows equal in both yield the same item and a
zero gap, so which comes first changes nothing): every backend gives the same answer. With
``collapse_repeats`` (default for paths, as in PostHog) a run of consecutive equal items counts
once: the run's first event stands for it, and the time *into* the next item is measured from the
run's last event to the next run's first event (the moment the customer moved on). The result is
the unit's *sequence* ``s_1 … s_n``.

**Transitions** (:func:`transitions`, retentioneering's transition graph). For every unit, the
pairs ``(path_start, s_1)``, ``(s_i, s_i+1)`` and ``(s_n, path_end)``, with the virtual nodes
``path_start`` and ``path_end``. Per edge ``(a, b)``: ``count`` (pairs), ``persons`` (distinct
persons with the pair), ``share`` = count / number of pairs leaving ``a``, ``median_seconds``
between the two events (``None`` on virtual edges; the median of an even number of gaps is the
mean of the middle two). Without ``collapse_repeats`` (the default here) ``(a, a)`` self-loops
count.

**Window.** :func:`paths` looks at a window of each sequence, at most ``steps`` items long:

- no anchor: ``s_1 … s_steps``; steps are numbered 1, 2, …;
- ``start=X`` (paths *from* X): from the first ``X`` on, ``steps`` items; ``X`` is step 1;
- ``end=Y`` (paths *to* Y): the ``steps`` items ending at the first ``Y``; ``Y`` is step 0 and
  the items before it are steps -1, -2, … (aligned on the anchor, as a Sankey needs);
- ``start=X, end=Y`` (paths *between*): from the first ``X`` to the first ``Y`` after it,
  truncated to ``steps`` items; ``X`` is step 1. ``X`` may equal ``Y`` (from one ``X`` to the next).

Units without the anchor(s) have no window and are not counted. The window is prefixed by
``path_start`` when it begins at ``s_1`` and suffixed by ``path_end`` when it ends at ``s_n``
(step one before/after their neighbour); so drop-offs show as links into ``path_end``.

**Sankey** (``PathsResult.nodes``/``links``). Links are the consecutive pairs of the prefixed
and suffixed windows; a node is ``(step, item)`` with id ``"<step>_<item>"``. Per link: ``value``
(pairs), ``persons``, ``share`` = value / all pairs leaving the source node, ``median_seconds``
as above. Only the ``edge_limit`` links with the largest value are kept (ties by source step,
source, target), and the nodes they touch.

**Top paths.** Each unit's prefixed and suffixed window is one *path variant*; the
``path_limit`` most frequent variants with their ``count`` (units), ``persons`` and ``share`` of
all units that have a window (ties broken by the variant's text).

Every query is built as data (:class:`CompiledQuery`, pure) and run through a
:class:`~wayline.analytics.backend.Backend`, the same SQL on DuckDB and (transpiled) PostgreSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from wayline.analytics.backend import Backend
from wayline.analytics.filters import PropertyFilter, date_range_sql
from wayline.analytics.ordering import pass_threads
from wayline.analytics.query import CompiledQuery, Params, events_where_sql
from wayline.analytics.sessions import DEFAULT_SESSION_GAP, sessionize_sql
from wayline.errors import InputError

PATH_START = "path_start"
PATH_END = "path_end"
# Joins a path's items into one string inside SQL (ASCII unit separator: never in a name).
_SEP = "\x1f"
_PAGE_EVENTS = ("$page", "$screen")
MAX_STEPS = 50
#: Codes of the virtual nodes (items are coded 1, 2, … by name).
_START, _END = -1, -2


@dataclass(frozen=True)
class GroupRule:
    """Rename every item that fully matches ``pattern`` (a regular expression) to ``name``."""

    pattern: str
    name: str

    @classmethod
    def parse(cls, text: str) -> GroupRule:
        """``"/product/.*=product_view"`` → GroupRule (the CLI's ``--group`` syntax)."""
        pattern, sep, name = text.rpartition("=")
        if not sep or not pattern or not name:
            raise InputError(f"expected PATTERN=NAME, got {text!r}", field="group")
        return cls(pattern, name)


@dataclass(frozen=True)
class PathsQuery:
    """What to look at. See the module docstring for the meaning of each field."""

    workspace_id: str = "default"
    since: datetime | None = None
    until: datetime | None = None
    by: Literal["person", "session"] = "person"
    item: Literal["event", "event_or_page"] = "event_or_page"
    filters: tuple[PropertyFilter, ...] = ()
    exclude: tuple[str, ...] = ()
    groups: tuple[GroupRule, ...] = ()
    collapse_repeats: bool = True
    start: str | None = None
    end: str | None = None
    steps: int = 5
    edge_limit: int = 50
    path_limit: int = 10
    session_gap: timedelta = DEFAULT_SESSION_GAP


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    count: int
    persons: int
    share: float
    median_seconds: float | None


@dataclass(frozen=True)
class SankeyNode:
    id: str
    name: str
    step: int


@dataclass(frozen=True)
class SankeyLink:
    source: str
    target: str
    value: int
    persons: int
    share: float
    median_seconds: float | None


@dataclass(frozen=True)
class PathVariant:
    items: tuple[str, ...]
    count: int
    persons: int
    share: float


@dataclass(frozen=True)
class PathsResult:
    """A Sankey (nodes, links) and the top path variants of one :class:`PathsQuery`."""

    query: PathsQuery
    units: int
    nodes: tuple[SankeyNode, ...]
    links: tuple[SankeyLink, ...]
    top_paths: tuple[PathVariant, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (d3-sankey / ECharts shape: nodes and links by node id)."""
        q = self.query
        return {
            "query": {
                "workspace_id": q.workspace_id,
                "since": q.since.isoformat() if q.since else None,
                "until": q.until.isoformat() if q.until else None,
                "by": q.by,
                "start": q.start,
                "end": q.end,
                "steps": q.steps,
            },
            "units": self.units,
            "nodes": [{"id": n.id, "name": n.name, "step": n.step} for n in self.nodes],
            "links": [
                {
                    "source": link.source,
                    "target": link.target,
                    "value": link.value,
                    "persons": link.persons,
                    "share": link.share,
                    "median_seconds": link.median_seconds,
                }
                for link in self.links
            ],
            "top_paths": [
                {"items": list(p.items), "count": p.count, "persons": p.persons, "share": p.share}
                for p in self.top_paths
            ],
        }


# --- validate -------------------------------------------------------------------------------


def validate(q: PathsQuery) -> PathsQuery:
    """Refuse a query that cannot mean anything, saying which field is wrong."""
    if q.by not in ("person", "session"):
        raise InputError("by must be person or session", field="by")
    if q.item not in ("event", "event_or_page"):
        raise InputError("item must be event or event_or_page", field="item")
    if not 1 <= q.steps <= MAX_STEPS:
        raise InputError(f"steps must be between 1 and {MAX_STEPS}, got {q.steps}", field="steps")
    if q.edge_limit < 1:
        raise InputError("edge limit must be at least 1", field="edge_limit")
    if q.path_limit < 0:
        raise InputError("path limit must not be negative", field="path_limit")
    date_range_sql(q.since, q.until)  # raises InputError on a naive or empty range
    if q.session_gap <= timedelta(0):
        raise InputError("the session gap must be positive", field="session_gap")
    for rule in q.groups:
        try:
            re.compile(rule.pattern)
        except re.error as exc:
            raise InputError(
                f"bad regular expression {rule.pattern!r}: {exc}", field="group"
            ) from exc
    for anchor, name in ((q.start, "start"), (q.end, "end")):
        if anchor is not None and anchor in q.exclude:
            raise InputError(f"{anchor!r} is both an anchor and excluded", field=name)
    return q


# --- build (pure) ---------------------------------------------------------------------------


def _items_cte(q: PathsQuery, p: Params, dialect: str) -> str:
    """SQL of the filtered, named (and sessionized) events: person_id, unit, ts, ``rc`` (the
    rank of the raw item among the distinct raw items by name) and ``item`` (the item's code),
    from the ``path_names`` CTE (:func:`_names_ctes`).

    The names are worked out once per distinct raw item (a few dozen event names and page
    paths), not per event, and the events carry integer codes: the windows order a unit's
    events by ``(ts, rc)`` — the same order as ``(ts, raw_item)`` — and carry integers, not
    text; on DuckDB the person (and session) are 64-bit hashes too. Sorting and shifting text
    through 10 M-row windows was most of the time. (Two of a million customers share a hash
    with a probability of ~1e-8.)
    """
    where = events_where_sql(
        p,
        workspace_id=q.workspace_id,
        since=q.since,
        until=q.until,
        filters=q.filters,
        dialect=dialect,
    )
    raw = _raw_item_sql(q)
    base = f'SELECT person_id, session_id, "timestamp" AS ts, {raw} AS raw_item FROM events WHERE '
    hashed = dialect == "duckdb"
    person = "hash(person_id)" if hashed else "person_id"
    if q.by == "session":
        sessions = sessionize_sql(f"({base}{where})", gap=q.session_gap, time_column="ts")
        unit = "hash(session_key)" if hashed else "session_key"
        units = (
            f"SELECT {person} AS person_id, {unit} AS unit, ts, raw_item FROM ({sessions}) AS _s"
        )
    else:
        units = f"SELECT {person} AS person_id, '' AS unit, ts, raw_item FROM ({base}{where}) AS _b"
    return (
        "SELECT _u.person_id, _u.unit, _u.ts, _c.rc, _c.ic AS item, _c.at_start, _c.at_end "
        "FROM (" + units + ") AS _u JOIN path_names AS _c ON _c.raw_item = _u.raw_item"
    )


def _names_ctes(q: PathsQuery, p: Params, dialect: str) -> str:
    """The ``path_names`` CTE: per distinct raw item of the events in range, its ``item``
    (grouping rules applied; excluded names dropped), ``rc`` (rank of the raw item by name)
    and ``ic`` (rank of the item by name: equal items, equal codes); and ``all_names``: code →
    item, with the virtual nodes. The queries work on the codes and name them at the end."""
    where = events_where_sql(
        p,
        workspace_id=q.workspace_id,
        since=q.since,
        until=q.until,
        filters=q.filters,
        dialect=dialect,
    )
    named = "raw_item"
    if q.groups:
        whens = " ".join(
            f"WHEN regexp_matches(raw_item, {p(f'^(?:{rule.pattern})$')}) THEN {p(rule.name)}"
            for rule in q.groups
        )
        named = f"CASE {whens} ELSE raw_item END"
    # Raw items of the events in range, before sessions: the same set, from a plain scan.
    distinct = f"SELECT DISTINCT {_raw_item_sql(q)} AS raw_item FROM events WHERE {where}"
    dictionary = f"SELECT raw_item, {named} AS item FROM ({distinct}) AS _d"
    if q.exclude:
        marks = ", ".join(p(name) for name in q.exclude)
        dictionary = (
            f"SELECT * FROM ({dictionary}) AS _x "
            f"WHERE raw_item NOT IN ({marks}) AND item NOT IN ({marks})"
        )
    # Whether the item is the start or end anchor, decided once per name.
    at_start = f"item = {p(q.start)}" if q.start is not None else "FALSE"
    at_end = f"item = {p(q.end)}" if q.end is not None else "FALSE"
    return f"""path_names AS (
    SELECT raw_item, item, row_number() OVER (ORDER BY raw_item) AS rc,
        dense_rank() OVER (ORDER BY item) AS ic, {at_start} AS at_start, {at_end} AS at_end
    FROM ({dictionary}) AS _n
),
all_names AS (
    SELECT DISTINCT ic, item FROM path_names
    UNION ALL SELECT {_START}, '{PATH_START}'
    UNION ALL SELECT {_END}, '{PATH_END}'
)"""


def _raw_item_sql(q: PathsQuery) -> str:
    if q.item == "event_or_page":
        pages = ", ".join(f"'{e}'" for e in _PAGE_EVENTS)
        return (
            f"CASE WHEN event IN ({pages}) AND page_path IS NOT NULL THEN page_path ELSE event END"
        )
    return "event"


def _window(q: PathsQuery, *, order: str = "ts, rc") -> str:
    """The window of a unit's sequence. Ties on time are ordered by the raw item name (its
    rank ``rc``): rows equal in both give the same item and a zero gap, so every result is the
    same whichever of them comes first — and the sort key stays narrow, which is where the
    time goes. Later passes order by the first pass's row number, narrower still."""
    unit = "person_id" if q.by == "person" else "person_id, unit"
    return f"PARTITION BY {unit} ORDER BY {order}"


def transitions_query(q: PathsQuery, dialect: str = "duckdb") -> CompiledQuery:
    """SQL of the transition graph (one window pass; no anchor or step limit apply)."""
    p = Params()
    names = _names_ctes(q, p, dialect)
    items = _items_cte(q, p, dialect)
    keep = "TRUE" if not q.collapse_repeats else "prev_item IS NULL OR prev_item <> item"
    sql = f"""
WITH {names},
seq AS MATERIALIZED (
    SELECT person_id, item,
        lag(item) OVER w AS prev_item,
        epoch(ts) - epoch(lag(ts) OVER w) AS gap,
        lead(item) OVER w IS NULL AS is_last
    FROM ({items}) AS _i
    WINDOW w AS ({_window(q)})
),
edges AS (
    SELECT coalesce(prev_item, {_START}) AS source, item AS target, person_id, gap
    FROM seq WHERE {keep}
    UNION ALL
    SELECT item AS source, {_END} AS target, person_id, NULL AS gap
    FROM seq WHERE is_last
),
counted AS (
    SELECT source, target, count(*) AS n, count(DISTINCT person_id) AS persons,
        median(gap) AS median_gap
    FROM edges
    GROUP BY source, target
)
SELECT s.item AS source_name, t.item AS target_name, c.n, c.persons, c.median_gap
FROM counted AS c JOIN all_names AS s ON s.ic = c.source JOIN all_names AS t ON t.ic = c.target
ORDER BY c.n DESC, s.item, t.item
"""
    return p.compile(sql)


def _first_kept(q: PathsQuery, rows: str) -> str:
    """The first ``steps`` of ``rows`` (pass-1 rows, in sequence order) per unit, numbered
    ``pos`` 1, 2, …, with ``is_last`` when no row of the unit follows.

    Written as ``row_number() … <= steps + 1`` on its own so that DuckDB turns it into a
    top-N hash aggregate instead of sorting every row again; the extra row tells whether the
    sequence goes on, which a ``lead()`` would only know after that full sort.
    """
    unit = "person_id" if q.by == "person" else "person_id, unit"
    return f"""SELECT person_id, unit, item, prev_item, gap, pos,
            pos = max(pos) OVER (PARTITION BY {unit}) AS is_last
        FROM (
            SELECT person_id, unit, item, prev_item, gap,
                row_number() OVER (PARTITION BY {unit} ORDER BY rn) AS pos
            FROM ({rows}) AS _k
        ) AS _top WHERE pos <= {q.steps + 1}"""


def _window_cte(q: PathsQuery, p: Params, dialect: str) -> str:
    """SQL of the windowed rows: person_id, unit, step, item, source (the previous item in the
    window, ``path_start``, or NULL when the window starts mid-sequence), gap, is_end."""
    items = _items_cte(q, p, dialect)
    keep = "TRUE" if not q.collapse_repeats else "(prev_item IS NULL OR prev_item <> item)"
    w = _window(q)
    w2 = _window(q, order="rn")
    n = q.steps
    # Pass 1 (raw order): the previous item and the gap into this event; anchor counters.
    extra: list[str] = []
    if q.start is None and q.end is None and not q.collapse_repeats:
        # Nothing is dropped after this pass, so positions are known already: one sort only.
        extra.append("lead(item) OVER w IS NULL AS is_last")
    if q.start is not None:
        extra.append(
            "count(*) FILTER (WHERE at_start) OVER (w ROWS BETWEEN UNBOUNDED "
            "PRECEDING AND CURRENT ROW) AS xs"
        )
    if q.end is not None and q.start is None:
        extra.append(
            "count(*) FILTER (WHERE at_end) OVER (w ROWS BETWEEN UNBOUNDED "
            "PRECEDING AND 1 PRECEDING) AS ys_before"
        )
        extra.append(
            "count(*) FILTER (WHERE at_end) OVER (w ROWS BETWEEN UNBOUNDED "
            "PRECEDING AND UNBOUNDED FOLLOWING) AS ys"
        )
        extra.append(
            "count(*) FILTER (WHERE NOT at_end) OVER (w ROWS BETWEEN 1 FOLLOWING "
            "AND UNBOUNDED FOLLOWING) AS others_after"
        )
        extra.append(
            "count(*) OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS rows_after"
        )
    extra_sql = "".join(f", {e}" for e in extra)
    pass1 = f"""SELECT person_id, unit, item, at_start, at_end, row_number() OVER w AS rn,
        lag(item) OVER w AS prev_item,
        epoch(ts) - epoch(lag(ts) OVER w) AS gap{extra_sql}
    FROM ({items}) AS _i
    WINDOW w AS ({w})"""

    if q.start is None and q.end is None:
        if q.collapse_repeats:
            # Pass 2 over the kept rows: their position.
            sql = _first_kept(q, f"SELECT * FROM ({pass1}) AS _p1 WHERE {keep}")
        else:
            sql = f"SELECT *, rn AS pos FROM ({pass1}) AS _p1"
        return f"""SELECT person_id, unit, pos AS step, item,
            CASE WHEN pos = 1 THEN {_START} ELSE prev_item END AS source,
            CASE WHEN pos = 1 THEN NULL ELSE gap END AS gap,
            is_last AS is_end
        FROM ({sql}) AS _p2 WHERE pos <= {n}"""
    if q.start is not None and q.end is None:
        sql = _first_kept(q, f"SELECT * FROM ({pass1}) AS _p1 WHERE {keep} AND xs >= 1")
        return f"""SELECT person_id, unit, pos AS step, item,
            CASE WHEN pos > 1 THEN prev_item WHEN prev_item IS NULL THEN {_START} END
                AS source,
            CASE WHEN pos > 1 THEN gap END AS gap,
            is_last AS is_end
        FROM ({sql}) AS _p2 WHERE pos <= {n}"""
    if q.start is None and q.end is not None:
        after = "others_after = 0" if q.collapse_repeats else "rows_after = 0"
        sql = f"""SELECT person_id, unit, item, prev_item, gap,
            row_number() OVER ({_window(q, order="rn DESC")}) AS back,
            (ys_before = 0 AND {after}) AS anchor_is_last
        FROM ({pass1}) AS _p1 WHERE {keep} AND ys > 0 AND ys_before = 0"""
        return f"""SELECT person_id, unit, 1 - back AS step, item,
            CASE WHEN prev_item IS NULL THEN {_START} WHEN back < {n} THEN prev_item END
                AS source,
            CASE WHEN prev_item IS NOT NULL AND back < {n} THEN gap END AS gap,
            back = 1 AND anchor_is_last AS is_end
        FROM ({sql}) AS _p2 WHERE back <= {n}"""
    # Between start and end: the anchor is the first start; the window ends at the first end
    # after it (not the anchor itself when start == end).
    anchor = "(xs = 1 AND at_start)"
    y_after = "at_end AND NOT is_anchor"
    sql = f"""SELECT person_id, unit, item, prev_item, gap, is_anchor,
            row_number() OVER w2 AS pos, lead(item) OVER w2 IS NULL AS is_last,
            count(*) FILTER (WHERE {y_after}) OVER (w2 ROWS BETWEEN UNBOUNDED PRECEDING
                AND 1 PRECEDING) AS ys_before,
            count(*) FILTER (WHERE {y_after}) OVER (w2 ROWS BETWEEN UNBOUNDED PRECEDING
                AND UNBOUNDED FOLLOWING) AS ys
        FROM (SELECT *, {anchor} AS is_anchor FROM ({pass1}) AS _p0) AS _p1
        WHERE {keep} AND xs >= 1
        WINDOW w2 AS ({w2})"""
    return f"""SELECT person_id, unit, pos AS step, item,
            CASE WHEN pos > 1 THEN prev_item WHEN prev_item IS NULL THEN {_START} END
                AS source,
            CASE WHEN pos > 1 THEN gap END AS gap,
            is_last AS is_end
        FROM ({sql}) AS _p2 WHERE ys > 0 AND coalesce(ys_before, 0) = 0 AND pos <= {n}"""


def paths_query(q: PathsQuery, dialect: str = "duckdb") -> CompiledQuery:
    """SQL of the Sankey links and the top path variants, in one statement so that the
    windows are computed once. Rows are ``(kind, a, b, c, d, n, persons, median, total)``:

    - ``link``: source step, source, target step, target, pairs, persons, median gap, pairs
      leaving the source node — the ``edge_limit`` largest links;
    - ``path``: starts (0/1), path (items joined by U+001F), ends (0/1), NULL, units, persons,
      NULL, NULL — the ``path_limit`` most frequent variants;
    - ``units``: NULLs and the number of units with a window in ``n``.
    """
    p = Params()
    names = _names_ctes(q, p, dialect)
    win = _window_cte(q, p, dialect)
    sql = f"""
WITH {names},
win AS MATERIALIZED ({win}),
{_links_and_paths_sql(q)}"""
    return p.compile(sql)


def _links_and_paths_sql(q: PathsQuery) -> str:
    """The CTEs and final ``SELECT`` of :func:`paths_query` after ``win`` (the windowed rows,
    see :func:`_window_cte`) and ``all_names``: links, variants and units, in the rows that
    :func:`paths` shapes."""
    # The path as one code per step, from one max() per step rather than an ordered
    # string_agg, which costs a sort per unit; variants are counted on the codes and only
    # they are named. In a window "to" an anchor steps run 1-n … 0.
    offset = q.steps if q.end is not None and q.start is None else 0
    ks = range(1, q.steps + 1)
    slots = ", ".join(f"max(CASE WHEN step = {k - offset} THEN item END) AS s{k}" for k in ks)
    codes = ", ".join(f"s{k}" for k in ks)
    joins = " ".join(f"LEFT JOIN all_names AS n{k} ON n{k}.ic = v.s{k}" for k in ks)
    text = ", ".join(f"n{k}.item" for k in ks)
    # Per person, a window holds one link per step and is one variant: the distinct-person
    # count equals the plain count, and skipping it saves a large hash table.
    persons = "count(*)" if q.by == "person" else "count(DISTINCT person_id)"
    return f"""pairs AS (
    SELECT step - 1 AS source_step, source, step AS target_step, item AS target, person_id, gap
    FROM win WHERE source IS NOT NULL
    UNION ALL
    SELECT step, item, step + 1, {_END}, person_id, NULL
    FROM win WHERE is_end
),
links AS (
    SELECT source_step, source, target_step, target, count(*) AS n,
        {persons} AS persons, median(gap) AS median_gap
    FROM pairs
    GROUP BY source_step, source, target_step, target
),
units AS (
    SELECT person_id, unit,
        max(CASE WHEN source = {_START} THEN 1 ELSE 0 END) AS starts,
        max(CASE WHEN is_end THEN 1 ELSE 0 END) AS ends,
        {slots}
    FROM win
    GROUP BY person_id, unit
),
variants AS (
    SELECT starts, ends, {codes}, count(*) AS n, {persons} AS persons
    FROM units
    GROUP BY starts, ends, {codes}
),
named AS (
    SELECT v.starts, v.ends, v.n, v.persons, concat_ws(chr(31), {text}) AS path
    FROM variants AS v {joins}
)
SELECT 'link' AS kind, CAST(source_step AS BIGINT) AS a, source_name AS b,
    CAST(target_step AS BIGINT) AS c, target_name AS d, n, persons,
    CAST(median_gap AS DOUBLE) AS median_gap, out_n AS total
FROM (
    SELECT l.*, sn.item AS source_name, tn.item AS target_name,
        CAST(sum(l.n) OVER (PARTITION BY l.source_step, l.source) AS BIGINT) AS out_n
    FROM links AS l JOIN all_names AS sn ON sn.ic = l.source
        JOIN all_names AS tn ON tn.ic = l.target
    ORDER BY l.n DESC, l.source_step, sn.item, tn.item
    LIMIT {int(q.edge_limit)}
) AS _links
UNION ALL
SELECT 'path', CAST(starts AS BIGINT), path, CAST(ends AS BIGINT), NULL, n, persons,
    CAST(NULL AS DOUBLE), CAST(NULL AS BIGINT)
FROM (
    SELECT * FROM named ORDER BY n DESC, path, starts, ends LIMIT {int(q.path_limit)}
) AS _paths
UNION ALL
SELECT 'units', NULL, NULL, NULL, NULL, count(*), NULL, CAST(NULL AS DOUBLE),
    CAST(NULL AS BIGINT)
FROM units
"""


# --- execute and shape ----------------------------------------------------------------------


def _seconds(value: Any) -> float | None:
    # Medians come back as double (DuckDB) or numeric/double (PostgreSQL); a millisecond is
    # all the precision a journey needs, and rounding makes both backends agree.
    return None if value is None else round(float(value), 3)


def transitions(backend: Backend, q: PathsQuery | None = None) -> list[Transition]:
    """The transition graph (see the module docstring), most frequent edges first."""
    q = validate(q or PathsQuery(collapse_repeats=False))
    cq = transitions_query(q, backend.dialect)
    rows = backend.fetch(cq.sql, cq.params)
    out_total: dict[str, int] = {}
    for source, _t, n, *_ in rows:
        out_total[source] = out_total.get(source, 0) + int(n)
    return [
        Transition(
            source=source,
            target=target,
            count=int(n),
            persons=int(persons),
            share=int(n) / out_total[source],
            median_seconds=_seconds(gap),
        )
        for source, target, n, persons, gap in rows
    ]


def _node_id(step: int, name: str) -> str:
    return f"{step}_{name}"


def _one_pass(backend: Backend, q: PathsQuery) -> bool:
    """Whether the windows are cut in numpy (:mod:`wayline.analytics.paths_pass`) rather than
    by :func:`_window_cte`'s window functions: on DuckDB (whose persons and sessions are
    64-bit hashes, see :func:`_items_cte`)."""
    return (
        backend.dialect == "duckdb"
        and hasattr(backend, "fetch_arrow")
        and hasattr(backend, "fetch_over")
    )


def _one_pass_rows(backend: Any, q: PathsQuery) -> list[tuple[Any, ...]]:
    """The rows of :func:`paths_query`, with ``win`` computed by one sort and
    :func:`wayline.analytics.paths_pass.windows`. The names are read first (one small
    query) and handed back to DuckDB, so the events are scanned once more, not twice."""
    import numpy as np
    import pyarrow as pa

    from wayline.analytics.paths_pass import windows_in_parts

    p = Params()
    names = p.compile(f"WITH {_names_ctes(q, p, backend.dialect)} SELECT * FROM path_names")
    path_names = backend.fetch_arrow(names.sql, names.params)
    # Only the columns the windows need: each is 10 M values on a large store.
    extra = [n for n, anchor in (("at_start", q.start), ("at_end", q.end)) if anchor is not None]
    orders = None
    if q.by == "session":
        events, units, orders = _session_events(backend, q, path_names, extra)
    else:
        p = Params()
        items = _items_cte(q, p, backend.dialect)
        # Sorted here, not by DuckDB: an ORDER BY of the 10 M benchmark rows took ~4 CPU-s.
        cq = p.compile(
            "SELECT person_id, epoch_us(ts) AS t, rc, item, epoch(ts) AS e"
            f"{''.join(', ' + e for e in extra)} FROM ({items}) AS _i"
        )
        events = backend.fetch_arrow(cq.sql, cq.params, tables={"path_names": path_names})
        units = events.column("person_id").to_numpy()
    flags = {
        name: events.column(name).to_numpy(zero_copy_only=False)
        for name in ("at_start", "at_end")
        if name in extra
    }
    win = windows_in_parts(
        units,
        events.column("t").to_numpy(),
        events.column("rc").to_numpy(),
        events.column("item").to_numpy(),
        events.column("e").to_numpy(),
        steps=q.steps,
        collapse_repeats=q.collapse_repeats,
        at_start=flags.get("at_start"),
        at_end=flags.get("at_end"),
        parts=pass_threads(),
        orders=orders,
    )
    ic = path_names.column("ic").to_pylist()
    item = path_names.column("item").to_pylist()
    codes = dict(zip(ic, item, strict=True))
    all_names = pa.table(
        {
            "ic": pa.array([*codes, _START, _END], pa.int64()),
            "item": pa.array([*codes.values(), PATH_START, PATH_END], pa.string()),
        }
    )
    rows = pa.array(win.row)
    table = pa.table(
        {
            "person_id": events.column("person_id").take(rows),
            "unit": (
                pa.array(np.zeros(len(win.step), dtype=np.int8))  # one unit per person
                if q.by == "person"
                else units[win.row]
            ),
            "step": win.step,
            "item": win.item,
            "source": pa.array(win.source, mask=~win.has_source),
            "gap": pa.array(win.gap, pa.float64(), from_pandas=True),
            "is_end": win.is_end,
        }
    )
    return list(
        backend.fetch_over(
            f"WITH {_links_and_paths_sql(q)}", {"win": table, "all_names": all_names}
        )
    )


def _session_events(
    backend: Any, q: PathsQuery, path_names: Any, extra: list[str]
) -> tuple[Any, Any, list[Any]]:
    """The one pass's event rows per session: the per-person rows' columns for every event in
    range, each row's session key, and the rows to window, per part, in session order
    (:func:`wayline.analytics.sessions_pass.sessions`).

    Sessions are cut in numpy, with the sort the windows need anyway, rather than by
    :func:`sessionize_sql`'s window functions: on the 10 M-event benchmark the query took ~11
    CPU-s instead of ~22. Excluded items still count towards sessions, so their rows are read
    too (``kept`` false) and left out of the windows."""
    from wayline.analytics.sessions_pass import sessions

    p = Params()
    where = events_where_sql(
        p,
        workspace_id=q.workspace_id,
        since=q.since,
        until=q.until,
        filters=q.filters,
        dialect=backend.dialect,
    )
    anchors = "".join(f", coalesce(_c.{name}, FALSE) AS {name}" for name in extra)
    cq = p.compile(
        "SELECT hash(_b.person_id) AS person_id, _b.session_id IS NOT NULL AS has_sid, "
        "hash(_b.session_id) AS sid, epoch_us(_b.ts) AS t, epoch(_b.ts) AS e, "
        "coalesce(_c.rc, 0) AS rc, coalesce(_c.ic, 0) AS item, _c.ic IS NOT NULL AS kept"
        f"{anchors} "
        f'FROM (SELECT person_id, session_id, "timestamp" AS ts, {_raw_item_sql(q)} AS raw_item '
        f"FROM events WHERE {where}) AS _b "
        "LEFT JOIN path_names AS _c ON _c.raw_item = _b.raw_item"
    )
    rows = backend.fetch_arrow(cq.sql, cq.params, tables={"path_names": path_names})
    cut = sessions(
        rows.column("person_id").to_numpy(),
        rows.column("sid").to_numpy(),
        rows.column("has_sid").to_numpy(),
        rows.column("t").to_numpy(),
        rows.column("rc").to_numpy(),
        rows.column("e").to_numpy(),
        gap_seconds=q.session_gap.total_seconds(),
        keep=rows.column("kept").to_numpy(),
        parts=pass_threads(),
    )
    return rows, cut.units, cut.orders


def paths(backend: Backend, q: PathsQuery | None = None) -> PathsResult:
    """The Sankey and the top paths of ``q`` (see the module docstring)."""
    q = validate(q or PathsQuery())
    if _one_pass(backend, q):
        rows = _one_pass_rows(backend, q)
    else:
        cq = paths_query(q, backend.dialect)
        rows = backend.fetch(cq.sql, cq.params)
    nodes: dict[str, SankeyNode] = {}
    link_rows: list[tuple[Any, ...]] = []
    path_rows: list[tuple[Any, ...]] = []
    units = 0
    for kind, *row in rows:
        if kind == "link":
            link_rows.append(tuple(row))
        elif kind == "path":
            path_rows.append(tuple(row))
        else:
            units = int(row[4])
    # UNION ALL keeps no order: restore each part's own.
    link_rows.sort(key=lambda r: (-int(r[4]), int(r[0]), r[1], r[3]))
    path_rows.sort(key=lambda r: (-int(r[4]), r[1], int(r[0]), int(r[2])))
    links = []
    for s_step, source, t_step, target, n, persons, gap, out_n in link_rows:
        s_id, t_id = _node_id(int(s_step), source), _node_id(int(t_step), target)
        nodes.setdefault(s_id, SankeyNode(s_id, source, int(s_step)))
        nodes.setdefault(t_id, SankeyNode(t_id, target, int(t_step)))
        links.append(
            SankeyLink(s_id, t_id, int(n), int(persons), int(n) / int(out_n), _seconds(gap))
        )
    top = []
    for starts, path, ends, _d, n, persons, _m, _t in path_rows:
        items = ((PATH_START,) if starts else ()) + tuple(path.split(_SEP))
        items += (PATH_END,) if ends else ()
        top.append(PathVariant(items, int(n), int(persons), int(n) / units))
    ordered = sorted(nodes.values(), key=lambda node: (node.step, node.name))
    return PathsResult(q, units, tuple(ordered), tuple(links), tuple(top))
