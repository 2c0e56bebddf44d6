"""The ``events`` table on PostgreSQL: created from the same column list, loaded fast with COPY.

Analytic queries are written once in DuckDB's dialect and run on PostgreSQL through
:class:`wayline.analytics.backend.PostgresBackend`; the parity tests load the same rows into both
engines and compare the answers. This module does the PostgreSQL side of that: the table
(:func:`wayline.storage.eventstore.create_events_table_sql` with ``dialect="postgres"``, so the
two cannot drift apart) and the load.

Loading uses ``COPY … FROM STDIN (FORMAT csv)`` fed with CSV that Arrow's C++ writer produces a
record batch at a time: no Python loop per row, and memory bounded by one batch whatever the size
of the source. CSV keeps NULL and the empty string apart (an unquoted empty field is NULL, ``""``
is an empty string), timestamps travel as ISO-8601 UTC and money as exact decimal text. A load is
one transaction: it lands whole or not at all.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from wayline.events.schema import EVENT_ARROW_SCHEMA, EVENT_COLUMNS
from wayline.storage.eventstore import EventStore, create_events_table_sql

#: Rows per record batch streamed from DuckDB and per CSV chunk sent to PostgreSQL.
BATCH_ROWS = 100_000

_COLUMN_LIST = ", ".join(f'"{name}"' for name in EVENT_COLUMNS)
_COPY_SQL = f"COPY events ({_COLUMN_LIST}) FROM STDIN (FORMAT csv)"
_CSV_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed")


def psycopg_url(sqlalchemy_url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) as a libpq URL psycopg can connect to."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres+psycopg://"):
        if sqlalchemy_url.startswith(prefix):
            return "postgresql://" + sqlalchemy_url[len(prefix) :]
    return sqlalchemy_url


def create_events_table(conn: Any) -> None:
    """Create the ``events`` table (and an index for per-workspace time scans) if missing.

    ``conn`` is a psycopg 3 connection; the table lands in the first schema on its search path.
    """
    with conn.transaction():
        conn.execute(create_events_table_sql(dialect="postgres"))
        conn.execute(
            'CREATE INDEX IF NOT EXISTS events_workspace_time ON events (workspace_id, "timestamp")'
        )


def _conform(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """Columns in table order, with the event schema's types (JSON as text, UTC times)."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    return table.select(list(EVENT_COLUMNS)).cast(EVENT_ARROW_SCHEMA)


def _copy_batches(conn: Any, batches: Iterable[pa.RecordBatch | pa.Table]) -> int:
    rows = 0
    with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
        for batch in batches:
            table = _conform(batch)
            if table.num_rows == 0:
                continue
            buffer = io.BytesIO()
            pa_csv.write_csv(table, buffer, _CSV_OPTIONS)
            copy.write(buffer.getbuffer())
            rows += table.num_rows
    return rows


def copy_arrow(conn: Any, table: pa.Table) -> int:
    """Load event rows (an Arrow table of ``EVENT_ARROW_SCHEMA``) into ``events`` with COPY,
    in one transaction. Returns the number of rows loaded."""
    return _copy_batches(conn, table.to_batches(max_chunksize=BATCH_ROWS))


def copy_from_duckdb(store: EventStore, conn: Any, workspace_id: str | None = None) -> int:
    """Copy the events of a DuckDB store (one workspace, or all) into PostgreSQL's ``events``,
    streamed a batch at a time, in one PostgreSQL transaction. Returns the number of rows."""
    # JSON columns are cast to text so Arrow sees plain strings whatever DuckDB's JSON export.
    columns = ", ".join(
        f'"{name}"::VARCHAR AS "{name}"' if kind == "JSON" else f'"{name}"'
        for name, kind in EVENT_COLUMNS.items()
    )
    sql = f"SELECT {columns} FROM events"
    params: list[Any] = []
    if workspace_id is not None:
        sql += " WHERE workspace_id = ?"
        params.append(workspace_id)
    relation: Any = store.con.sql(sql, params=params or None)
    # DuckDB 2 calls it to_arrow_reader; DuckDB 1 (allowed by pyproject) record_batch.
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.record_batch
    return _copy_batches(conn, to_reader(BATCH_ROWS))
