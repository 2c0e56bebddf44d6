"""Bulk statements per dialect: the runtime writes hundreds of rows per transaction.

SQLite: inserts are multi-row ``INSERT … VALUES`` statements of up to 999 values
(:func:`_sqlite_insert`), updates ``executemany`` of one prepared statement; parameters built
with ``itemgetter`` and each distinct datetime formatted once per batch (a batch stamps most
rows with the same ``now``: formatting per row was a third of the runtime's time). Membership
tests (``IN``) pass the values as one JSON parameter read by ``json_each``, so the statement
text is the same for every batch and SQLAlchemy neither re-compiles it nor binds each value.
PostgreSQL: one
statement with one parameter, the batch as a JSON array (encoded by orjson), spread into rows
by ``json_to_recordset`` on the server. The SQL text is the same for every batch, there is one
round trip, and neither SQLAlchemy nor the driver touches each value: several times faster than
a multi-row ``VALUES`` (which the driver re-parses for every batch) or a pipeline of single-row
statements. Plain inserts (no ``ON CONFLICT``) go by binary ``COPY`` instead, the cheapest
way into PostgreSQL: 3.0 µs of server and 0.8 µs of client CPU per step record against 6.6
and 1.6 through ``json_to_recordset`` (measured, 100,000 rows).

Lookups by a batch of keys (:func:`probe`) are written so that PostgreSQL probes the index once
per key whatever its statistics say. On tables it has not analysed yet (a fresh install, a
first burst) it guesses that a workspace holds a row or two and hashes the whole workspace
instead: 30 ms per batch of 500 customers among 18,000 instances, a quarter of the server's
CPU in the benchmark, and growing with the table (measured with ``auto_explain``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVarTuple
from typing import cast as cast_type

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

_Ts = TypeVarTuple("_Ts")
_JSON = postgresql.JSON(none_as_null=True)
_PG_TYPES = {"VARCHAR": "text", "TEXT": "text", "INTEGER": "integer", "BIGINT": "bigint"}


def _pg_type(column: Any) -> str:
    name = type(column.type).__name__.upper()
    if name == "UTCDATETIME" or "DATETIME" in name or "TIMESTAMP" in name:
        return "timestamptz"
    return _PG_TYPES.get(str(column.type.compile()).split("(")[0].upper(), "text")


@dataclass(frozen=True)
class Later:
    """Keys bound when a statement built once runs, as ``{name: keys_json(values)}``: building a
    statement and its cache key took SQLAlchemy ~0.75 ms per batch and statement, ~10 µs per
    transition over a benchmark run's few hundred (measured), where running a prebuilt one
    skips both. ``integer``: the keys are integers (PostgreSQL casts them back)."""

    name: str
    integer: bool = False


def keys_json(values: Iterable[Any]) -> str:
    """The parameter value of a :class:`Later` (one JSON array, encoded by orjson)."""
    return orjson.dumps(list(values)).decode()


def _listed(values: Iterable[Any] | Later, postgres: bool) -> Any:
    """The values as rows of one column ``key``, from one JSON parameter (encoded by orjson):
    ``json_array_elements_text`` on PostgreSQL (cast back to the values' type), ``json_each`` on
    SQLite. Not a PostgreSQL array: psycopg dumps a list of text in Python, a regular-expression
    search per element — 0.6 ms per batch of 500 keys, a tenth of a PostgreSQL batch's client
    time (measured)."""
    if isinstance(values, Later):
        data = bindparam(values.name, type_=String())
        integer = values.integer
    else:
        items = list(values)
        data = bindparam(None, keys_json(items), type_=String())
        integer = bool(items) and isinstance(items[0], int)
    if not postgres:
        return select(func.json_each(data).table_valued("value").c.value.label("key"))
    kind = BigInteger() if integer else String()
    elements = func.json_array_elements_text(cast(data, _JSON)).table_valued("value")
    return select(cast(elements.c.value, kind).label("key"))


def member_of(column: Any, values: Iterable[Any] | Later, postgres: bool) -> ColumnElement[bool]:
    """``column IN values`` with the values as one parameter (:func:`_listed`).

    Not ``= ANY(:array)`` on PostgreSQL: psycopg prepares a statement run five times, and the
    generic plan of ``= ANY($n)`` tests every row of the workspace against every element of
    the array when the table has no statistics yet (a fresh or freshly filled table: 86 ms
    for 500 customers among 10,000, measured), where the semi-join probes the index or hashes.
    """
    return column.in_(_listed(values, postgres))  # type: ignore[no-any-return]


def json_text(column: Any) -> Any:
    """Select a JSON column as its text, for :func:`json_value` (orjson): SQLAlchemy's JSON type
    decodes every value with the standard library's ``json``, several times slower."""
    return cast(column, Text()).label(column.key)


def json_value(raw: str | None) -> Any:
    return orjson.loads(raw) if raw else None


def insert_rows(
    conn: Connection,
    table: Any,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    *,
    postgres: bool,
    names: Sequence[str] | None = None,
    conflict: Sequence[str] | None = None,
    add: str | None = None,
) -> None:
    """Insert ``rows``: dicts with the same keys, or tuples of the columns ``names`` (the hot
    path's step records: no dict per row); ``conflict``: skip rows clashing there, or, with
    ``add``, add their ``add`` column to the existing row's (a counter)."""
    if not rows:
        return
    names = list(names) if names is not None else list(rows[0])
    if conflict and add:
        action = f"DO UPDATE SET {add} = {table.name}.{add} + excluded.{add}"
    else:
        action = "DO NOTHING"
    on_conflict = f" ON CONFLICT ({', '.join(conflict)}) {action}" if conflict else ""
    if not postgres:
        _sqlite_insert(conn, table, names, _sqlite_params(table, names, rows), on_conflict)
        return
    if not conflict:
        _copy(conn, table, names, rows)
        return
    # Not ``unnest`` of one array per column: psycopg dumps a list of text in Python, escaping
    # each element with a regular expression (measured: 70 % of a PostgreSQL batch's time).
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} "
        f"FROM json_to_recordset(CAST(:rows AS json)) AS v({_record_type(table, names)})"
        + on_conflict
    )
    conn.execute(text(sql), {"rows": _json(rows, names)})


#: Bound values per SQLite statement: the limit of SQLite before 3.32 (later ones take 32,766).
_SQLITE_MAX_VARIABLES = 999


def _sqlite_insert(
    conn: Connection, table: Any, names: Sequence[str], params: list[Any], on_conflict: str
) -> None:
    """Insert tuples of ``names`` by multi-row ``INSERT … VALUES (…), (…)`` statements, as
    many rows in each as SQLite's variable limit allows.

    Not ``executemany`` of a one-row statement: SQLite then resets the statement and runs it
    once per row, and the driver re-enters its loop per row. A step record cost 6.9–7.5 µs of
    CPU that way against 4.8–5.1 µs in statements of 90 rows (measured, 160,000 rows with
    the records' index; a customer through the benchmark's journey writes 20 rows). Full
    statements all have the same text, so SQLite's statement cache compiles it once.
    """
    per_statement = max(1, _SQLITE_MAX_VARIABLES // len(names))
    head = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
    one = f"({', '.join('?' for _ in names)})"
    for start in range(0, len(params), per_statement):
        chunk = params[start : start + per_statement]
        sql = head + ", ".join([one] * len(chunk)) + on_conflict
        conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))


def _copy(
    conn: Connection,
    table: Any,
    names: Sequence[str],
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
) -> None:
    """``COPY … FROM STDIN (FORMAT binary)`` on the connection's own transaction."""
    tuples: Sequence[Any] = rows
    if isinstance(rows[0], Mapping):
        get = itemgetter(*names)
        tuples = [get(r) if len(names) > 1 else (get(r),) for r in rows]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(
            f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT binary)"
        ) as copy:
            copy.set_types([_pg_type(table.c[n]) for n in names])
            for row in tuples:
                copy.write_row(row)
    finally:
        cursor.close()


def inline(value: str) -> Any:
    """A string constant written into the SQL rather than bound, for a condition that selects a
    partial index (``status = 'active'``). psycopg prepares a statement it runs five times, and
    PostgreSQL's generic plan for it cannot use a partial index on ``status = $1``: it took
    another index and walked a whole workspace per customer (495 ms per batch of 500 among
    18,000 instances, against 6 ms with the constant; measured)."""
    return literal_column("'" + value.replace("'", "''") + "'")


def probe(
    query: Select[*_Ts], column: Any, values: Iterable[Any] | Later, postgres: bool
) -> Select[*_Ts]:
    """``query`` restricted to rows whose ``column`` is one of ``values``.

    PostgreSQL: each value drives a ``LATERAL`` copy of ``query`` (``OFFSET 0`` keeps the
    planner from flattening it back into a join it could hash), so the table's index on
    ``column`` is probed once per value whatever the statistics (module docstring). The rows
    keep ``query``'s column names. SQLite: :func:`member_of`.
    """
    if not postgres:
        return query.where(member_of(column, values, False))
    keys = _listed(values, True).subquery("keys")
    each = query.where(column == keys.c.key).offset(0).lateral("each")
    joined = select(*each.c).select_from(keys).join(each, true())
    return cast_type("Select[*_Ts]", joined)


def update_rows(
    conn: Connection,
    table: Any,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    postgres: bool,
) -> None:
    """``UPDATE table SET … WHERE key = …`` for each row (dicts: ``key`` and the columns).

    Rows that set the same (hashable) values — a batch of sends marked sent at one moment — are
    updated by one ``UPDATE … WHERE key IN (…)`` per group: no parameters or JSON per row. The
    other rows go together in one statement, as below.
    """
    if not rows:
        return
    names = [n for n in rows[0] if n != key]
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    values = itemgetter(*names)
    for row in rows:
        groups[values(row) if len(names) > 1 else (values(row),)].append(row[key])
    singles = []
    for shared, keys in groups.items():
        if len(keys) == 1:
            singles.append({key: keys[0], **dict(zip(names, shared, strict=True))})
        else:
            sets = {f"set_{n}": v for n, v in zip(names, shared, strict=True)}
            statement = _update_where_in(table, key, tuple(names), postgres)
            conn.execute(statement, {"keys": keys_json(keys), **sets})
    if singles:
        _update_each(conn, table, key, names, singles, postgres=postgres)


@cache
def _update_where_in(table: Any, key: str, names: tuple[str, ...], postgres: bool) -> Any:
    """``UPDATE table SET names… WHERE key IN (:keys)``, built once per shape (see
    :class:`Later`); the values are bound as ``set_<name>``."""
    column = table.c[key]
    later = Later("keys", integer=isinstance(column.type, Integer))
    return (
        update(table)
        .where(member_of(column, later, postgres))
        .values({n: bindparam(f"set_{n}", type_=table.c[n].type) for n in names})
    )


def _update_each(
    conn: Connection,
    table: Any,
    key: str,
    names: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    postgres: bool,
) -> None:
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
    conn.execute(text(sql), {"rows": _json(rows, cols)})


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
    table: Any, names: Sequence[str], rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]]
) -> list[Any]:
    key = tuple(names)
    tuples = not isinstance(rows[0], Mapping)
    times = _time_positions(table, key)
    if tuples and not times:
        return list(rows)
    if not tuples and len(key) == 1:
        get = itemgetter(key[0])
        return [(get(r),) for r in rows]
    if not times:
        return list(map(itemgetter(*key), rows))
    # Column by column, with ``map`` (the loops run in C): each distinct datetime of a column is
    # formatted once, then looked up. Per row and per value in Python this was 0.77 s of a 17 s
    # profile of the runtime (40,000 transitions).
    columns: list[Any] = (
        list(zip(*rows, strict=True)) if tuples else [list(map(itemgetter(n), rows)) for n in key]
    )
    for i in times:
        formatted = {v: _sqlite(v) for v in set(columns[i])}
        columns[i] = map(formatted.__getitem__, columns[i])
    return list(zip(*columns, strict=True))


def _record_type(table: Any, names: Sequence[str]) -> str:
    return ", ".join(f"{n} {_pg_type(table.c[n])}" for n in names)


def _json(rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]], names: Sequence[str]) -> str:
    # Datetimes become RFC 3339 text with their offset, which timestamptz reads exactly.
    if rows and not isinstance(rows[0], Mapping):
        rows = [dict(zip(names, r, strict=True)) for r in rows]
    return orjson.dumps(list(rows)).decode()
