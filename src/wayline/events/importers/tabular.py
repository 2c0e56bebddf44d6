"""Generic event files: CSV, JSON Lines and Parquet, one event per row, with a column mapping.

Three columns say who did what when: ``user_id``, ``event`` and ``timestamp`` by default (matched
ignoring case and punctuation, so ``userId`` or ``User ID`` work too); ``--map`` names others. A
file whose rows are all one event may give its name instead (``--event``), and a file of
visitors not yet known may give ``anonymous_id`` instead of ``user_id``.

Every other column becomes a property of the event. Well-known columns (``anonymous_id``,
``message_id``, ``revenue``, ``currency``, ``device_type``, ``os``, ``channel``, ``country``,
``session_id``, ``page_path``) also fill the event row's lifted columns. In JSON Lines, a
``properties`` object is merged into the properties, and ``traits``/``context`` objects are kept
as such; a ``type`` column gives Segment's call type (``identify`` rows become ``$identify``…),
so a dump of Segment messages imports as it is.

Timestamps are ISO-8601 with or without an offset (without means UTC) or a number of seconds,
milliseconds or microseconds since 1970 (told apart by magnitude).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from typing import Any

from wayline.errors import InputError
from wayline.events.importers.base import (
    Built,
    Check,
    Context,
    DuplicatePolicy,
    Plan,
    any_timestamp_sql,
    blank_to_null,
    columns_found,
    device_type_sql,
    epoch_timestamp_sql,
    events_select,
    jsonl_line_of,
    known_channel_sql,
    lit,
    money_check,
    money_sql,
    q,
    require_content,
    text_timestamp_sql,
    timestamp_sql_for,
)
from wayline.events.schema import CALL_EVENT_NAMES, EVENT_TYPES

#: Event-row fields a column can fill, each with the (normalised) column names it takes by default.
FIELDS: dict[str, tuple[str, ...]] = {
    "user_id": ("userid",),
    "anonymous_id": ("anonymousid",),
    "type": ("type",),
    "event": ("event", "eventname"),
    "timestamp": ("timestamp",),
    "message_id": ("messageid",),
    "revenue": ("revenue",),
    "currency": ("currency",),
    "device_type": ("devicetype",),
    "os": ("os",),
    "channel": ("channel",),
    "country": ("country",),
    "session_id": ("sessionid",),
    "page_path": ("pagepath",),
}

# Fields whose column only fills the event row, not the properties. Revenue and currency stay
# in the properties too (where the Segment spec has them), and so do channel and device type,
# whose raw value may say more than the lifted one (which takes only the names it knows).
# Copying every lifted column into the JSON as well would cost a third of the load time.
_ROW_ONLY_FIELDS = (
    "type",
    "user_id",
    "anonymous_id",
    "event",
    "timestamp",
    "message_id",
    "os",
    "country",
    "session_id",
    "page_path",
)
# JSON Lines objects kept apart from the properties.
_NESTED = ("properties", "traits", "context")
_SAMPLE_ROWS = 2000
_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+([eE][-+]?[0-9]+)?")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def resolve_columns(
    names: Sequence[str], mapping: dict[str, str], *, file: str, event_name: str | None
) -> dict[str, str]:
    """Field → column of the file, from ``mapping`` and the default names. Pure.

    Raises :class:`InputError` for a mapping to an unknown field or a missing column, listing
    the columns the file has.
    """
    by_norm: dict[str, str] = {}
    for name in names:
        by_norm.setdefault(_norm(name), name)
    exact = set(names)
    chosen: dict[str, str] = {}
    for target, column in mapping.items():
        if target not in FIELDS:
            raise InputError(
                f"cannot map {target!r}; fields that take a column: {', '.join(FIELDS)}",
                source=file,
                field=target,
            )
        found = column if column in exact else by_norm.get(_norm(column))
        if found is None:
            raise InputError(
                f"no column {column!r} (mapped to {target}); columns found: {columns_found(names)}",
                source=file,
                field=column,
            )
        chosen[target] = found
    for target, defaults in FIELDS.items():
        if target not in chosen:
            for default in defaults:
                if default in by_norm:
                    chosen[target] = by_norm[default]
                    break
    # With a type column (a Segment dump), identify/page/… rows need no event name.
    needs_event = not event_name and "type" not in chosen
    required = ["timestamp"] + (["event"] if needs_event else [])
    for target in required:
        if target not in chosen:
            raise InputError(
                f"no {target} column; columns found: {columns_found(names)} "
                f"(name one with --map {target}=COLUMN)",
                source=file,
                field=target,
            )
    if "user_id" not in chosen and "anonymous_id" not in chosen:
        raise InputError(
            f"no user_id or anonymous_id column; columns found: {columns_found(names)} "
            "(name one with --map user_id=COLUMN)",
            source=file,
            field="user_id",
        )
    return chosen


def sniff_delimiter(ctx: Context) -> str:
    with ctx.path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        sample = fh.read(64 * 1024)
    if not sample.strip():
        raise InputError("the file is empty: expected a header row", source=ctx.file, row=1)
    first = sample.splitlines()[0]
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def csv_header(ctx: Context, delimiter: str) -> list[str]:
    """The header row of a CSV file, refusing empty or repeated names."""
    with ctx.path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        header = next(csv.reader(fh, delimiter=delimiter), [])
    names = [h.strip() for h in header]
    if not names or not any(names):
        raise InputError("expected a header row naming the columns", source=ctx.file, row=1)
    seen: set[str] = set()
    for name in names:
        if not name:
            raise InputError("a column of the header has no name", source=ctx.file, row=1)
        if name in seen:
            raise InputError(f"the column {name!r} appears twice", source=ctx.file, row=1)
        seen.add(name)
    return names


def csv_row_of(ctx: Context, delimiter: str) -> Callable[[int], int]:
    """Staged ``_row`` (data record + 1) → the spreadsheet row, counting the blank lines DuckDB
    skips and a quoted value over several lines as one row, as a spreadsheet does."""

    def row_of(staged: int) -> int:
        wanted = staged - 1  # the data record's number, from 1
        seen = 0
        with ctx.path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
            for row, record in enumerate(csv.reader(fh, delimiter=delimiter), start=1):
                if row > 1 and any(record):
                    seen += 1
                    if seen == wanted:
                        return row
        return staged

    return row_of


def read_csv_sql(ctx: Context, names: Sequence[str], delimiter: str) -> str:
    """DuckDB's CSV reader with everything decided up front: no sniffing, text columns, strict.

    Sniffing is off on purpose: on a ragged file DuckDB's sniffer may pick another dialect and
    silently drop rows; here a malformed row is an error naming its line.
    """
    columns = "{" + ", ".join(f"{lit(n)}: 'VARCHAR'" for n in names) + "}"
    return (
        f"read_csv({lit(str(ctx.path))}, auto_detect = false, header = true, "
        f"delim = {lit(delimiter)}, quote = '\"', escape = '\"', strict_mode = true, "
        f"columns = {columns})"
    )


def _text_kinds(con: Any, source: str, names: Sequence[str]) -> dict[str, str]:
    """What a sample of each text column holds: 'int', 'float', 'bool', 'epoch' or 'text'.

    A CSV has only text; numbers that look like numbers become JSON numbers in the properties
    (a value that later does not fit stays a string, so nothing fails on a guess).
    """
    if not names:
        return {}
    rows = con.execute(
        f"SELECT {', '.join(q(n) for n in names)} FROM {source} LIMIT {_SAMPLE_ROWS}"
    ).fetchall()
    kinds: dict[str, str] = {}
    for i, name in enumerate(names):
        values = [str(r[i]).strip() for r in rows if r[i] is not None and str(r[i]).strip()]
        if values and all(_INT.fullmatch(v) for v in values):
            kinds[name] = "int"
        elif values and all(_INT.fullmatch(v) or _FLOAT.fullmatch(v) for v in values):
            kinds[name] = "float"
        elif values and all(v.lower() in ("true", "false") for v in values):
            kinds[name] = "bool"
        else:
            kinds[name] = "text"
    return kinds


def _timestamp_kind(con: Any, source: str, text: str) -> Callable[[str], str]:
    """How to parse a text timestamp column, from a sample: epoch numbers, date-times, or both
    (then each value is tested, which costs more)."""
    rows = con.execute(
        f"SELECT trim(CAST({text} AS VARCHAR)) FROM {source} "
        f"WHERE {text} IS NOT NULL LIMIT {_SAMPLE_ROWS}"
    ).fetchall()
    numeric = [bool(_INT.fullmatch(r[0]) or _FLOAT.fullmatch(r[0])) for r in rows if r[0]]
    if numeric and all(numeric):
        return epoch_timestamp_sql
    if any(numeric):
        return any_timestamp_sql
    return text_timestamp_sql


def _property_sql(name: str, kind: str | None) -> str:
    col = q(name)
    if kind == "int":
        return f"COALESCE(to_json(TRY_CAST({col} AS BIGINT)), to_json({col}))"
    if kind == "float":
        return f"COALESCE(to_json(TRY_CAST({col} AS DOUBLE)), to_json({col}))"
    if kind == "bool":
        return f"COALESCE(to_json(TRY_CAST({col} AS BOOLEAN)), to_json({col}))"
    return col


def build_events(con: Any, ctx: Context, fmt: str, source: str, *, text_only: bool) -> Built:
    """The events ``SELECT`` and checks of a staged generic file (columns of any type)."""
    described = con.execute(f"DESCRIBE SELECT * EXCLUDE (_row) FROM {source}").fetchall()
    types = {str(r[0]): str(r[1]) for r in described}
    names = list(types)
    nested = {n.lower(): n for n in names if n.lower() in _NESTED and fmt == "jsonl"}
    visible = [n for n in names if n not in nested.values()]
    chosen = resolve_columns(visible, dict(ctx.mapping), file=ctx.file, event_name=ctx.event_name)
    used = {chosen[f] for f in _ROW_ONLY_FIELDS if f in chosen}
    prop_names = [n for n in visible if n not in used]
    kinds = _text_kinds(con, source, prop_names) if text_only else {}

    if prop_names:
        members = ", ".join(f"{q(n)} := {_property_sql(n, kinds.get(n))}" for n in prop_names)
        props = f"to_json(struct_pack({members}))"
        if fmt == "jsonl":
            # A key a line does not have is no property of its event. (In a CSV or Parquet
            # file every row has every column: an empty cell stays a null member, as dropping
            # those would double the cost of the properties, the largest part of a load.)
            props = f"json_merge_patch('{{}}', {props})"
    else:
        props = "'{}'"
    if "properties" in nested:
        props = f"json_merge_patch({props}, COALESCE(to_json({q(nested['properties'])}), '{{}}'))"

    def col(target: str) -> str | None:
        """The column filling ``target``; a JSON value (mixed types in JSON Lines) as text."""
        if target not in chosen:
            return None
        name = chosen[target]
        return f"({q(name)} ->> '$')" if types[name].upper() == "JSON" else q(name)

    def is_text(target: str) -> bool:
        return types[chosen[target]].upper() in ("VARCHAR", "JSON")

    user = blank_to_null(str(col("user_id"))) if "user_id" in chosen else "NULL"
    anon = blank_to_null(str(col("anonymous_id"))) if "anonymous_id" in chosen else "NULL"
    if ctx.event_name:
        event = lit(ctx.event_name)
    elif "event" in chosen:
        event = blank_to_null(str(col("event")))
    else:
        event = "NULL"
    call_type = "'track'"
    if "type" in chosen:
        # Segment's call types; another value is refused (NULL fails the NOT NULL type column).
        raw_type = f"lower({blank_to_null(str(col('type')))})"
        known = ", ".join(lit(t) for t in EVENT_TYPES)
        call_type = (
            f"CASE WHEN {raw_type} IS NULL THEN 'track' "
            f"WHEN {raw_type} IN ({known}) THEN {raw_type} END"
        )
        call_names = " ".join(f"WHEN {lit(t)} THEN {lit(n)}" for t, n in CALL_EVENT_NAMES.items())
        event = f"CASE {call_type} {call_names} ELSE {event} END"
    ts_col = chosen["timestamp"]
    ts_text = str(col("timestamp"))
    if text_only or is_text("timestamp"):
        # One way of parsing for the whole file, told from a sample: testing each value for
        # "is it a number" would cost more than the parse itself.
        ts = _timestamp_kind(con, source, ts_text)(f"trim(CAST({ts_text} AS VARCHAR))")
    else:
        ts = timestamp_sql_for(q(ts_col), types[ts_col])
    generated_id = f"{lit(ctx.key + ':')} || CAST(_row AS VARCHAR)"
    message_id = (
        f"COALESCE({blank_to_null(str(col('message_id')))}, {generated_id})"
        if "message_id" in chosen
        else generated_id
    )

    def text(target: str) -> str:
        c = col(target)
        return blank_to_null(c) if c else "NULL"

    revenue = "NULL"
    checks: list[Check] = []
    if "revenue" in chosen:
        rev = str(col("revenue"))
        if is_text("revenue"):
            revenue = money_sql(rev, strict=True)
        else:
            revenue = f"CAST({rev} AS DECIMAL(18,2))"
    columns = ctx.common_columns() | {
        "message_id": message_id,
        "type": call_type,
        "event": event,
        "user_id": user,
        "anonymous_id": anon,
        "person_id": f"COALESCE({user}, {anon})",
        "timestamp": ts,
        "session_id": text("session_id"),
        "device_type": device_type_sql(str(col("device_type"))) if col("device_type") else "NULL",
        "os": text("os"),
        "channel": known_channel_sql(str(col("channel"))) if col("channel") else "NULL",
        "country": text("country"),
        "page_path": text("page_path"),
        "revenue": revenue,
        "currency": f"upper({text('currency')})",
        "properties": props,
    }
    for part in ("traits", "context"):
        if part in nested:
            columns[part] = f"COALESCE(to_json({q(nested[part])}), '{{}}')"

    if "type" in chosen:
        checks.append(
            Check(
                chosen["type"],
                f"unknown call type; expected one of {', '.join(EVENT_TYPES)}",
                f"{call_type} IS NULL",
                blank_to_null(str(col("type"))),
            )
        )
    if not ctx.event_name:
        checks.append(
            Check(chosen.get("event", "event"), "the event name is empty", f"{event} IS NULL")
        )
    who = chosen.get("user_id") or chosen["anonymous_id"]
    checks.append(
        Check(who, "needs a user id or an anonymous id", f"{user} IS NULL AND {anon} IS NULL")
    )
    raw_ts = blank_to_null(ts_text)
    checks.append(Check(ts_col, "the timestamp is empty", f"{raw_ts} IS NULL"))
    checks.append(
        Check(
            ts_col,
            "not a timestamp (expected ISO-8601 such as 2024-05-01T12:30:00Z, "
            "or seconds/milliseconds since 1970)",
            f"{ts} IS NULL",
            raw_ts,
        )
    )
    if "revenue" in chosen and is_text("revenue"):
        checks.append(money_check(chosen["revenue"], str(col("revenue"))))
    duplicates: DuplicatePolicy = "skip" if "message_id" in chosen else "refuse"
    return Built(events_select(columns, source), checks, duplicates, one_event_per_row=True)


def plan_csv(ctx: Context) -> Plan:
    delimiter = sniff_delimiter(ctx)
    names = csv_header(ctx, delimiter)
    # Read straight from the file, no staging copy: staging cost a full extra write and read of
    # every row. The streaming row_number() keeps the file's order (the reader preserves it);
    # +1: rows as a spreadsheet numbers them (the header is row 1). A malformed row now fails
    # the load itself, which the runner reports like a staging error.
    source = (
        "(SELECT row_number() OVER () + 1 AS _row, * FROM "
        f"{read_csv_sql(ctx, names, delimiter)}) AS s"
    )
    return Plan(
        format="csv",
        stage=[],
        source=source,
        build=lambda con: build_events(con, ctx, "csv", source, text_only=True),
        id_prefix=ctx.key + ":",
        user_row=csv_row_of(ctx, delimiter),
    )


def plan_jsonl(ctx: Context) -> Plan:
    require_content(ctx.path)
    # The whole file is sampled for types (sample_size = -1), so a value late in the file can
    # not contradict a guess made from its head.
    stage = (
        "CREATE OR REPLACE TEMP TABLE _wl_raw AS SELECT * FROM "
        f"read_json({lit(str(ctx.path))}, format = 'newline_delimited', sample_size = -1)"
    )
    source = "(SELECT rowid + 1 AS _row, * FROM _wl_raw) AS s"
    return Plan(
        format="jsonl",
        stage=[("reading JSON lines", stage)],
        source=source,
        build=lambda con: build_events(con, ctx, "jsonl", source, text_only=False),
        id_prefix=ctx.key + ":",
        temp_tables=["_wl_raw"],
        user_row=jsonl_line_of(ctx.path),
    )


def plan_parquet(ctx: Context) -> Plan:
    # Read straight from the file (no staging copy): Parquet is typed and numbers its rows.
    source = (
        "(SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) FROM "
        f"read_parquet({lit(str(ctx.path))}, file_row_number = true)) AS s"
    )
    return Plan(
        format="parquet",
        stage=[],
        source=source,
        build=lambda con: build_events(con, ctx, "parquet", source, text_only=False),
        id_prefix=ctx.key + ":",
    )
