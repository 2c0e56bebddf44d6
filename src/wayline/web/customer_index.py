"""The customer index: one row per customer the analytics store has events of — first and last
seen, number of events, and the user and anonymous ids seen — behind the customer list and
search of the dashboard and the REST API.

Searching the events themselves scans every row per request: 1.8–2.5 s on the 10 M-event store
(measured, with the e-mails and names of 140,000 profiles joined in). The index has one row per
customer (470,000 there): built in about 2 s, searched in about 50 ms, kept as an Arrow table
(35 MB there) and queried with an in-memory DuckDB. It lives in the analytics cache
(:mod:`wayline.web.cache`) like the dashboard's other heavy results — persisted for new workers,
rebuilt in the background when events arrive, prewarmed by ``wayline serve`` — so a customer's
latest events show in the list after one refresh (their profile, read from the operational
store on every request, shows at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from wayline.analytics.backend import Backend, DuckDBBackend
from wayline.web.cache import Cached, cached_result

#: Between the ids of one customer in the ``ids`` column: a character no id or search holds.
ID_SEPARATOR = "\x1f"

# Searches run on cursors of one in-memory database (``fetch_over``: the index is registered
# on a cursor of its own, safe to use from any thread): opening a new database costs 16 ms, a
# cursor under 1 ms (measured).
_MEMORY = DuckDBBackend(duckdb.connect())


@dataclass(frozen=True)
class IndexedCustomer:
    person_id: str
    first_seen: datetime
    last_seen: datetime
    events: int


@dataclass(frozen=True)
class IndexMatch:
    """The ``k`` most recently seen matching customers, how many match, and how many of those
    are among the ``known`` ids given (those with a profile)."""

    top: list[IndexedCustomer]
    customers: int
    known: int


def build_index(backend: Backend, workspace_id: str) -> pa.Table:
    """The index of one workspace, read from the analytics store (DuckDB)."""
    assert isinstance(backend, DuckDBBackend), "the customer index is built on DuckDB"
    sep = ID_SEPARATOR
    table: pa.Table = backend.fetch_arrow(
        'SELECT person_id, min("timestamp") AS first_seen, max("timestamp") AS last_seen, '
        "count(*) AS events, concat_ws(?, string_agg(DISTINCT user_id, ?), "
        "string_agg(DISTINCT anonymous_id, ?)) AS ids "
        "FROM events WHERE workspace_id = ? GROUP BY person_id",
        [sep, sep, sep, workspace_id],
    )
    return table


def customer_index(state: Any, workspace_id: str) -> Cached[pa.Table]:
    """The workspace's index through the cache of the app whose ``state`` is given."""
    return cached_result(
        state, ("customer-index", workspace_id), lambda b: build_index(b, workspace_id)
    )


def search_index(
    index: pa.Table,
    *,
    like: str | None,
    matched: Sequence[str] | None,
    known: Sequence[str] | None,
    k: int,
) -> IndexMatch:
    """Customers whose id or any user/anonymous id is ILIKE ``like`` (None: everyone), or whose
    id is in ``matched`` (profiles found by e-mail or name), most recently seen first."""
    where, params = "true", []
    if like is not None:
        where = (
            "(person_id ILIKE ? ESCAPE '\\' OR ids ILIKE ? ESCAPE '\\'"
            " OR person_id IN (SELECT unnest(?::VARCHAR[])))"
        )
        params = [like, like, list(matched or ())]
    is_known = "person_id IN (SELECT unnest(?::VARCHAR[]))" if known else "false"
    rows = _MEMORY.fetch_over(
        f"WITH m AS MATERIALIZED (SELECT person_id, first_seen, last_seen, events, "
        f"{is_known} AS known FROM idx WHERE {where}) "
        # Totals as scalar subqueries, not ``count(*) OVER ()``: a window over every row
        # makes DuckDB sort them all instead of keeping the top k (25x slower, measured).
        "SELECT person_id, first_seen, last_seen, events, (SELECT count(*) FROM m), "
        "(SELECT count(*) FILTER (WHERE known) FROM m) FROM m "
        "ORDER BY last_seen DESC, person_id LIMIT ?",
        {"idx": index},
        [*([list(known)] if known else []), *params, k],
    )
    if not rows:
        return IndexMatch([], 0, 0)
    return IndexMatch(
        [IndexedCustomer(str(p), first, last, int(n)) for p, first, last, n, _, _ in rows],
        int(rows[0][4]),
        int(rows[0][5]),
    )


def count_known(index: pa.Table, known: Sequence[str]) -> int:
    """How many of the ``known`` ids the index holds."""
    rows = _MEMORY.fetch_over(
        "SELECT count(*) FROM idx WHERE person_id IN (SELECT unnest(?::VARCHAR[]))",
        {"idx": index},
        [list(known)],
    )
    return int(rows[0][0])


def seen_of(index: pa.Table, persons: Sequence[str]) -> dict[str, IndexedCustomer]:
    """The index's rows of ``persons`` (those it has)."""
    rows = _MEMORY.fetch_over(
        "SELECT person_id, first_seen, last_seen, events FROM idx "
        "WHERE person_id IN (SELECT unnest(?::VARCHAR[]))",
        {"idx": index},
        [list(persons)],
    )
    return {str(p): IndexedCustomer(str(p), f, last, int(n)) for p, f, last, n in rows}
