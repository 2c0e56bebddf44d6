"""Bulk statements per dialect: the runtime writes hundreds of rows per transaction.

SQLite: ``executemany`` of one prepared statement (the driver loops in C), its parameters built
with ``itemgetter`` and each distinct datetime formatted once per batch (a batch stamps most
rows with the same ``now``: formatting per row was a third of the runtime's time). Membership
tests (``IN``) pass the values as one JSON parameter read by ``json_each``, so the statement
text is the same for every batch and SQLAlchemy neither re-compiles it nor binds each value.
PostgreSQL: one
statement with one parameter, the batch as a JSON array (encoded by orjson), spread into rows
by ``json_to_recordset`` on the server. The SQL text is the same for every batch, there is one
round trip, and neither SQLAlchemy nor the driver touches each value: several times faster than
a multi-row ``VALUES`` (which the driver re-parses for every batch) or a pipeline of single-row
statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    String,
    Text,
    bindparam,
    cast,
    func,
    select,
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
    """``column IN values`` with the values as one parameter: ``IN (SELECT unnest(:array))``
    on PostgreSQL, ``IN (SELECT value FROM json_each(:json))`` on SQLite.

    Not ``= ANY(:array)`` on PostgreSQL: psycopg prepares a statement run five times, and the
    generic plan of ``= ANY($n)`` tests every row of the workspace against every element of
    the array when the table has no statistics yet (a fresh or freshly filled table: 86 ms
    for 500 customers among 10,000, measured), where the semi-join probes the index or hashes.
    """
    items = list(values)
    if postgres:
        kind = BigInteger() if items and isinstance(items[0], int) else String()
        array = bindparam(None, items, type_=ARRAY(kind), expanding=False)
        return column.in_(select(func.unnest(array)))  # type: ignore[no-any-return]
    listed = func.json_each(bindparam(None, orjson.dumps(items).decode(), type_=String()))
    return column.in_(select(listed.table_valued("value").c.value))  # type: ignore[no-any-return]


def json_text(column: Any) -> Any:
    """Select a JSON column as its text, for :func:`json_value` (orjson): SQLAlchemy's JSON type
    decodes every value with the standard library's ``json``, several times slower."""
    return cast(column, Text()).label(column.key)


def json_value(raw: str | None) -> Any:
    return orjson.loads(raw) if raw else None


def insert_rows(
    conn: Connection,
    table: Any,
    rows: Sequence[Mapping[str, Any]],
    *,
    postgres: bool,
    conflict: Sequence[str] | None = None,
    add: str | None = None,
) -> None:
    """Insert ``rows`` (dicts with the same keys); ``conflict``: skip rows clashing there, or,
    with ``add``, add their ``add`` column to the existing row's (a counter)."""
    if not rows:
        return
    names = list(rows[0])
    if conflict and add:
        action = f"DO UPDATE SET {add} = {table.name}.{add} + excluded.{add}"
    else:
        action = "DO NOTHING"
    on_conflict = f" ON CONFLICT ({', '.join(conflict)}) {action}" if conflict else ""
    if not postgres:
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})" + on_conflict
        )
        conn.exec_driver_sql(sql, _sqlite_params(table, names, rows))
        return
    # Not ``unnest`` of one array per column: psycopg dumps a list of text in Python, escaping
    # each element with a regular expression (measured: 70 % of a PostgreSQL batch's time).
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} "
        f"FROM json_to_recordset(CAST(:rows AS json)) AS v({_record_type(table, names)})"
        + on_conflict
    )
    conn.execute(text(sql), {"rows": _json(rows)})


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


@cache
def _time_positions(table: Any, names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(i for i, n in enumerate(names) if _is_time(table.c[n]))


def _sqlite_params(
    table: Any, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[Any]:
    key = tuple(names)
    if len(key) == 1:
        get = itemgetter(key[0])
        return [(get(r),) for r in rows]
    times = _time_positions(table, key)
    if not times:
        return list(map(itemgetter(*key), rows))
    # Column by column, with ``map`` (the loops run in C): each distinct datetime of a column is
    # formatted once, then looked up. Per row and per value in Python this was 0.77 s of a 17 s
    # profile of the runtime (40,000 transitions).
    columns: list[Any] = [list(map(itemgetter(n), rows)) for n in key]
    for i in times:
        formatted = {v: _sqlite(v) for v in set(columns[i])}
        columns[i] = map(formatted.__getitem__, columns[i])
    return list(zip(*columns, strict=True))


def _record_type(table: Any, names: Sequence[str]) -> str:
    return ", ".join(f"{n} {_pg_type(table.c[n])}" for n in names)


def _json(rows: Sequence[Mapping[str, Any]]) -> str:
    # Datetimes become RFC 3339 text with their offset, which timestamptz reads exactly.
    return orjson.dumps(list(rows)).decode()
