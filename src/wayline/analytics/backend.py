"""Where analytic queries run: DuckDB (the embedded default) or PostgreSQL.

Queries are written once, in DuckDB's SQL dialect, as data (a string built by a pure function),
and transpiled with sqlglot for PostgreSQL. sqlglot was chosen over Ibis because our queries lean
on window functions and ASOF-style joins whose exact SQL we want to see and snapshot in tests;
Ibis would hide it behind an expression API and add a heavy dependency for little gain. A query
that cannot be expressed portably may carry a hand-written variant per dialect.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import sqlglot


@lru_cache(maxsize=512)
def transpile(sql: str, dialect: str) -> str:
    """DuckDB SQL → the given dialect's SQL (unchanged for DuckDB)."""
    if dialect == "duckdb":
        return sql
    return ";\n".join(sqlglot.transpile(sql, read="duckdb", write=dialect))


class Backend(Protocol):
    """Runs an analytic query and returns its rows as tuples."""

    dialect: str

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


@dataclass
class DuckDBBackend:
    """Queries a DuckDB connection (``EventStore.con``)."""

    con: Any  # duckdb.DuckDBPyConnection
    dialect: str = "duckdb"

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql, list(params)).fetchall())

    def fetch_arrow(
        self, sql: str, params: Sequence[Any] = (), tables: Mapping[str, Any] | None = None
    ) -> Any:
        """The result as a ``pyarrow.Table`` (columns, for work done in numpy); ``sql`` may
        read the given Arrow ``tables`` by name (as in :meth:`fetch_over`)."""
        with self._cursor(tables or {}) as cur:
            # A relation, not a DB-API result (which makes an extra copy of the rows).
            # ``to_arrow_table`` since DuckDB 1.4, ``fetch_arrow_table`` before.
            relation = cur.sql(sql, params=list(params) or None)
            fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
            return fetch()

    def fetch_over(
        self, sql: str, tables: Mapping[str, Any], params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` reading the given Arrow tables by name. They are registered on a
        cursor of their own, so concurrent queries on the connection never see them."""
        with self._cursor(tables) as cur:
            return list(cur.execute(sql, list(params)).fetchall())

    @contextmanager
    def _cursor(self, tables: Mapping[str, Any]) -> Iterator[Any]:
        """A cursor of its own (the connection may hold a caller's unfinished result) on which
        ``tables`` are registered. A cursor starts with the default session settings, so its
        time zone is set again: instants come back in UTC, as from the event store, not in the
        server's local zone."""
        cur = self.con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            for name, table in tables.items():
                cur.register(name, table)
            yield cur
        finally:
            cur.close()


@dataclass
class PostgresBackend:
    """Queries a PostgreSQL connection (psycopg 3) holding an ``events`` table of the same shape.

    Parameters are written ``?`` in the DuckDB SQL; they are passed through sqlglot, which
    renders them as ``%s`` for psycopg.
    """

    conn: Any  # psycopg.Connection
    dialect: str = "postgres"

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(transpile(sql, self.dialect), list(params))
            return list(cur.fetchall())
