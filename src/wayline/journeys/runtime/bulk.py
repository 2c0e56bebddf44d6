"""Bulk statements per dialect: the runtime writes hundreds of rows per transaction.

SQLite: ``executemany`` of one prepared statement (the driver loops in C). PostgreSQL: one
statement with one parameter, the batch as a JSON array (encoded by orjson), spread into rows
by ``json_to_recordset`` on the server. The SQL text is the same for every batch, there is one
round trip, and neither SQLAlchemy nor the driver touches each value: several times faster than
a multi-row ``VALUES`` (which the driver re-parses for every batch) or a pipeline of single-row
statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    Connection,
    String,
    any_,
    bindparam,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

_PG_TYPES = {"VARCHAR": "text", "TEXT": "text", "INTEGER": "integer", "BIGINT": "bigint"}


def _pg_type(column: Any) -> str:
    name = type(column.type).__name__.upper()
    if name == "UTCDATETIME" or "DATETIME" in name or "TIMESTAMP" in name:
        return "timestamptz"
    return _PG_TYPES.get(str(column.type.compile()).split("(")[0].upper(), "text")


def member_of(column: Any, values: Iterable[Any], postgres: bool) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)`` (one parameter)."""
    items = list(values)
    if postgres:
        result: ColumnElement[bool] = column == any_(
            bindparam(None, items, type_=ARRAY(String()), expanding=False)
        )
        return result
    return column.in_(items)  # type: ignore[no-any-return]


def insert_rows(
    conn: Connection,
    table: Any,
    rows: Sequence[Mapping[str, Any]],
    *,
    postgres: bool,
    conflict: Sequence[str] | None = None,
) -> None:
    """Insert ``rows`` (dicts with the same keys); ``conflict``: skip rows clashing there."""
    if not rows:
        return
    names = list(rows[0])
    if not postgres:
        verb = "INSERT OR IGNORE" if conflict is not None else "INSERT"
        sql = (
            f"{verb} INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        conn.exec_driver_sql(sql, _sqlite_params(table, names, rows))
        return
    casts = ", ".join(f"CAST(:{n} AS {_pg_type(table.c[n])}[])" for n in names)
    on_conflict = f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING" if conflict else ""
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({casts})" + on_conflict
    )
    conn.execute(text(sql), {n: [r[n] for r in rows] for n in names})


def update_rows(
    conn: Connection,
    table: Any,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    postgres: bool,
) -> None:
    """``UPDATE table SET … WHERE key = …`` for each row (dicts: ``key`` and the columns)."""
    if not rows:
        return
    names = [n for n in rows[0] if n != key]
    if not postgres:
        sets = ", ".join(f"{n} = ?" for n in names)
        conn.exec_driver_sql(
            f"UPDATE {table.name} SET {sets} WHERE {key} = ?",
            _sqlite_params(table, [*names, key], rows),
        )
        return
    cols = [key, *names]
    sets = ", ".join(f"{n} = v.{n}" for n in names)
    sql = (
        f"UPDATE {table.name} SET {sets} "
        f"FROM json_to_recordset(CAST(:rows AS json)) AS v({_record_type(table, cols)}) "
        f"WHERE {table.name}.{key} = v.{key}"
    )
    conn.execute(text(sql), {"rows": _json(rows)})


def _sqlite(value: Any) -> Any:
    """A value as SQLAlchemy's SQLite types store it: straight to the driver (executemany in C
    without SQLAlchemy's per-row parameter processing), so it must be stored identically —
    datetimes as naive UTC text in SQLAlchemy's format (see ``UTCDateTime``)."""
    if isinstance(value, datetime):
        v = value.astimezone(UTC)
        return (
            f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
            f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
        )
    return value


def _is_time(column: Any) -> bool:
    return _pg_type(column) == "timestamptz"


def _sqlite_params(
    table: Any, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    times = [n for n in names if _is_time(table.c[n])]
    if not times:
        return [tuple(r[n] for n in names) for r in rows]
    out = []
    for r in rows:
        values = dict(r)
        for n in times:
            values[n] = _sqlite(values[n])
        out.append(tuple(values[n] for n in names))
    return out


def _record_type(table: Any, names: Sequence[str]) -> str:
    return ", ".join(f"{n} {_pg_type(table.c[n])}" for n in names)


def _json(rows: Sequence[Mapping[str, Any]]) -> str:
    # Datetimes become RFC 3339 text with their offset, which timestamptz reads exactly.
    return orjson.dumps(list(rows)).decode()
