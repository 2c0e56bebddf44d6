"""Building an analytic query out of fragments, with its parameters kept in order.

Shared by the query runners (paths, retention, customer value, lifecycle, the journey map's
detectors): each builds DuckDB SQL as data with :class:`Params`, and gets a
:class:`CompiledQuery` — SQL with ``?`` placeholders and its values — that a
:class:`~wayline.analytics.backend.Backend` runs on DuckDB or PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wayline.analytics.filters import PropertyFilter, Sql, date_range_sql, filters_sql


@dataclass(frozen=True)
class CompiledQuery:
    """DuckDB SQL with ``?`` parameters, in order."""

    sql: str
    params: tuple[Any, ...] = ()


class Params:
    """Collects query parameters while SQL is assembled out of order.

    ``p(value)`` returns a marker to put in the SQL; :meth:`compile` turns the markers into
    ``?`` and lists the values in the order the markers finally appear, so fragments can be
    nested in any order without miscounting parameters.
    """

    _MARK = re.compile(r"@@(\d+)@@")

    def __init__(self) -> None:
        self._values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self._values.append(value)
        return f"@@{len(self._values) - 1}@@"

    def compile(self, sql: str) -> CompiledQuery:
        ordered: list[Any] = []

        def mark(m: re.Match[str]) -> str:
            ordered.append(self._values[int(m.group(1))])
            return "?"

        return CompiledQuery(self._MARK.sub(mark, sql).strip(), tuple(ordered))

    def embed(self, fragment: Sql) -> str:
        """A :class:`~wayline.analytics.filters.Sql` fragment's text with its ``?`` turned
        into markers (a ``?`` inside a quoted literal is left alone)."""
        values = iter(fragment.params)
        out: list[str] = []
        quoted = False
        for char in fragment.text:
            if char == "'":
                quoted = not quoted
            out.append(self(next(values)) if char == "?" and not quoted else char)
        return "".join(out)


def events_where_sql(
    p: Params,
    *,
    workspace_id: str,
    since: datetime | None,
    until: datetime | None,
    filters: Sequence[PropertyFilter] = (),
    dialect: str = "duckdb",
) -> str:
    """``WHERE`` conditions selecting a workspace's events in ``[since, until)`` that pass
    every property filter (rules in :mod:`wayline.analytics.filters`)."""
    where = (
        Sql("workspace_id = ?", (workspace_id,))
        + " AND "
        + date_range_sql(since, until)
        + " AND "
        + filters_sql(filters, dialect=dialect)
    )
    return p.embed(where)
