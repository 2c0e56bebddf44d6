"""What every importer shares: the plan of an import, SQL helpers, and locating bad rows.

An importer does not loop over rows in Python. It turns a file into a *plan*: SQL that stages the
file with DuckDB's own reader (``read_csv``, ``read_json``, ``read_parquet``), one ``SELECT`` that
shapes the staged rows into event rows (``EVENT_COLUMNS``, in table order), and a list of
*checks* — for each thing a row can get wrong, an SQL condition that is true on a bad row. The
runner (:mod:`wayline.events.importers.runner`) executes the fast path with strict casts; only
when DuckDB refuses does it run the checks over the staged rows, ordered by row number, to name the
first bad row and column. The checks are the slow path: they run only when something failed.

Every staged relation has a ``_row`` column: the row as a user sees it — the spreadsheet row of a
CSV (the header is row 1), the line of a JSON Lines file, the 1-based row of a Parquet file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from wayline.errors import InputError
from wayline.events.schema import CHANNELS, EVENT_COLUMNS

#: How re-imports are handled. ``refuse``: the message ids come from the file (its fingerprint and
#: row numbers), so finding any of them means the file was imported before — refuse it whole.
#: ``skip``: the ids are natural (an order number, a message id column), so rows already stored
#: are skipped and the rest loaded — an overlapping export adds only what is new.
DuplicatePolicy = Literal["refuse", "skip"]

# Bytes read from each end of a file for its fingerprint: enough to tell exports apart without
# reading gigabytes (the size is part of the fingerprint too).
_FINGERPRINT_SPAN = 1 << 20


@dataclass(frozen=True)
class Context:
    """What a format's planner knows about the import it plans."""

    path: Path
    #: The file's fingerprint (:func:`fingerprint`), the stem of generated message ids.
    key: str
    workspace_id: str
    #: The import's time: every row's ``received_at``.
    now: datetime
    #: ``import:<file name>``: every row's ``source``.
    source_name: str
    #: Event-row field → the file's column that fills it (``--map user_id=email``).
    mapping: Mapping[str, str] = field(default_factory=dict)
    #: The event name of every row, for a file whose rows are all one event (``--event``).
    event_name: str | None = None

    @property
    def file(self) -> str:
        return self.path.name

    def common_columns(self) -> dict[str, str]:
        """SQL of the columns that are the same on every row of this import."""
        return {
            "workspace_id": lit(self.workspace_id),
            "received_at": ts_lit(self.now),
            "source": lit(self.source_name),
            "traits": "'{}'",
            "context": "'{}'",
        }


@dataclass(frozen=True)
class Check:
    """One way a staged row can be wrong, as SQL over the staged relation.

    ``bad_sql`` is true on a bad row; ``value_sql`` is the offending raw value, shown to the user.
    """

    field: str
    message: str
    bad_sql: str
    value_sql: str | None = None


@dataclass(frozen=True)
class Built:
    """The shaping of staged rows into event rows."""

    #: ``SELECT`` of event rows (every column of ``EVENT_COLUMNS``, in order).
    events_sql: str
    #: What can be wrong with a row, in the order the checks are tried.
    checks: list[Check]
    duplicates: DuplicatePolicy = "refuse"
    #: Every staged row becomes exactly one event row (no filter, no fan-out): the rows read are
    #: then the rows produced, and the runner need not read the file again to count them.
    one_event_per_row: bool = False


@dataclass
class Plan:
    """How to load one file: stage it, shape it into event rows, and check it when that fails."""

    format: str
    #: Statements run first, inside the import's transaction (e.g. ``CREATE TEMP TABLE _raw``),
    #: each with a label for the progress display.
    stage: list[tuple[str, str]]
    #: A relation (table name or parenthesised query) with a ``_row`` column and the raw columns.
    source: str
    #: Called once the file is staged (it may look at the staged columns and sample rows).
    build: Callable[[Any], Built]
    #: Prefix of the message ids the plan generates (for ``refuse``).
    id_prefix: str = ""
    #: Temp tables to drop afterwards.
    temp_tables: list[str] = field(default_factory=list)
    #: Turns a staged ``_row`` into the row a user sees, when they differ (the slow path only).
    user_row: Callable[[int], int] | None = None


def jsonl_line_of(path: Path) -> Callable[[int], int]:
    """For JSON Lines: the record number → its line in the file (DuckDB skips blank lines)."""

    def line_of(record: int) -> int:
        seen = 0
        with path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    seen += 1
                    if seen == record:
                        return number
        return record

    return line_of


def require_content(path: Path) -> None:
    """Refuse a file with nothing but blank space at its start (an empty export)."""
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    if not head.strip():
        raise InputError("the file is empty", source=path.name)


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or, for a dry run, would do)."""

    file: str
    format: str
    rows_read: int
    events_loaded: int
    skipped: int
    events_by_name: dict[str, int]
    customers: int
    first_timestamp: datetime | None
    last_timestamp: datetime | None
    seconds: float
    dry_run: bool


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str | None) -> str:
    """A quoted SQL string literal (or NULL)."""
    if value is None:
        return "NULL"
    return "'" + value.replace("'", "''") + "'"


def ts_lit(value: datetime) -> str:
    """An aware datetime as a TIMESTAMPTZ literal."""
    return f"TIMESTAMPTZ {lit(value.isoformat())}"


def fingerprint(path: Path) -> str:
    """A short, stable id of a file's content: its size and its first and last mebibyte.

    Reading the whole file would cost more than loading it; size plus both ends tells real
    exports apart (a later export of the same store differs in size or in its last rows).
    """
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(_FINGERPRINT_SPAN))
        if size > 2 * _FINGERPRINT_SPAN:
            fh.seek(size - _FINGERPRINT_SPAN)
            digest.update(fh.read(_FINGERPRINT_SPAN))
        elif size > _FINGERPRINT_SPAN:
            digest.update(fh.read())
    return digest.hexdigest()[:16]


def blank_to_null(expr: str) -> str:
    """A value as trimmed text, with empty text as NULL."""
    return f"NULLIF(trim(CAST({expr} AS VARCHAR)), '')"


# Formats tried after DuckDB's own ISO-8601 cast: Shopify writes "2024-01-05 14:03:22 -0500".
_STRPTIME_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z", "%Y-%m-%dT%H:%M:%S%z")


def text_timestamp_sql(expr: str) -> str:
    """Text → TIMESTAMPTZ, NULL when unparseable: ISO-8601 (naive means UTC, the session time
    zone), then the formats of known exports."""
    formats = ", ".join(lit(f) for f in _STRPTIME_FORMATS)
    return f"COALESCE(TRY_CAST({expr} AS TIMESTAMPTZ), try_strptime({expr}, [{formats}]))"


def epoch_timestamp_sql(expr: str) -> str:
    """A number of seconds, milliseconds or microseconds since 1970 → TIMESTAMPTZ.

    The unit is told by magnitude: below 1e11 seconds (until year 5138), below 1e14
    milliseconds, else microseconds (GA4). NULL when not a number.
    """
    n = f"TRY_CAST({expr} AS DOUBLE)"
    return (
        f"CASE WHEN {n} IS NULL THEN NULL "
        f"WHEN abs({n}) < 1e11 THEN make_timestamp(CAST(round({n} * 1e6) AS BIGINT)) "
        f"WHEN abs({n}) < 1e14 THEN make_timestamp(CAST(round({n} * 1e3) AS BIGINT)) "
        f"ELSE make_timestamp(CAST(round({n}) AS BIGINT)) END::TIMESTAMPTZ"
    )


def any_timestamp_sql(expr: str) -> str:
    """Text that is either an epoch number or a date-time → TIMESTAMPTZ (NULL when neither)."""
    return (
        f"CASE WHEN regexp_full_match({expr}, '\\s*-?[0-9]+(\\.[0-9]+)?\\s*') "
        f"THEN {epoch_timestamp_sql(expr)} ELSE {text_timestamp_sql(expr)} END"
    )


def timestamp_sql_for(expr: str, duckdb_type: str) -> str:
    """The TIMESTAMPTZ of a column of the given DuckDB type."""
    t = duckdb_type.upper()
    if t.startswith("TIMESTAMP") or t == "DATE":
        return f"CAST({expr} AS TIMESTAMPTZ)"
    if t in ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "DOUBLE", "FLOAT", "SMALLINT") or (
        t.startswith("DECIMAL")
    ):
        return epoch_timestamp_sql(expr)
    return any_timestamp_sql(f"trim(CAST({expr} AS VARCHAR))")


def money_sql(expr: str, *, strict: bool) -> str:
    """An amount → DECIMAL(18,2). Strict casts raise on bad text (the fast path); else NULL."""
    cast = "CAST" if strict else "TRY_CAST"
    return f"{cast}({blank_to_null(expr)} AS DECIMAL(18,2))"


def money_check(field_name: str, expr: str) -> Check:
    """A check for an amount column: present but not a number."""
    raw = blank_to_null(expr)
    return Check(
        field=field_name,
        message="not an amount (expected a number such as 12.50)",
        bad_sql=f"{raw} IS NOT NULL AND {money_sql(expr, strict=False)} IS NULL",
        value_sql=raw,
    )


_PAID = "cpc|ppc|paid|cpm|display|ads?$|retargeting|affiliate"
_SOCIAL = (
    "facebook|instagram|tiktok|twitter|x\\.com|t\\.co|pinterest|linkedin|youtube|snapchat|"
    "reddit|fb|ig"
)
_SEARCH = "google|bing|duckduckgo|yahoo|baidu|yandex|ecosia|search"


def channel_sql(source: str, medium: str) -> str:
    """The acquisition channel from a UTM-style source and medium, in SQL.

    The same rules as :func:`wayline.events.normalize.classify_channel` (without a referrer).
    """
    s = f"lower(coalesce(trim({source}), ''))"
    m = f"lower(coalesce(trim({medium}), ''))"
    return f"""CASE
        WHEN {m} <> '' AND regexp_matches({m}, {lit(_PAID)}) THEN 'ads'
        WHEN contains({s}, 'whatsapp') OR contains({m}, 'whatsapp') THEN 'whatsapp'
        WHEN {m} = 'sms' OR {s} = 'sms' THEN 'sms'
        WHEN {m} IN ('email', 'e-mail', 'newsletter') OR {s} IN ('email', 'newsletter', 'klaviyo')
            THEN 'email'
        WHEN {m} IN ('social', 'social-media', 'social_media')
            OR ({s} <> '' AND regexp_matches({s}, {lit(_SOCIAL)})) THEN 'social'
        WHEN {m} IN ('organic', 'search') OR ({s} <> '' AND regexp_matches({s}, {lit(_SEARCH)}))
            THEN 'search'
        WHEN {s} IN ('', '(direct)') AND {m} IN ('', '(none)', '(not set)') THEN 'direct'
        ELSE 'referral'
    END"""


def known_channel_sql(expr: str) -> str:
    """A channel column taken as is when it names one of ``CHANNELS``, else NULL."""
    names = ", ".join(lit(c) for c in CHANNELS)
    v = f"lower({blank_to_null(expr)})"
    return f"CASE WHEN {v} IN ({names}) THEN {v} END"


def device_type_sql(expr: str) -> str:
    """A device column as mobile/tablet/desktop (phones and mobile OSes count as mobile)."""
    v = f"lower({blank_to_null(expr)})"
    return (
        f"CASE WHEN {v} IN ('mobile', 'phone', 'smartphone', 'ios', 'android') THEN 'mobile' "
        f"WHEN {v} IN ('tablet', 'ipad') THEN 'tablet' "
        f"WHEN {v} IN ('desktop', 'computer', 'pc', 'laptop') THEN 'desktop' END"
    )


def events_select(columns: dict[str, str], source: str, where: str | None = None) -> str:
    """``SELECT`` of event rows from per-column SQL (a column not given is NULL)."""
    unknown = set(columns) - set(EVENT_COLUMNS)
    if unknown:  # a bug in an importer, not bad input
        raise ValueError(f"not event columns: {sorted(unknown)}")
    exprs = ",\n    ".join(f"{columns.get(name, 'NULL')} AS {q(name)}" for name in EVENT_COLUMNS)
    sql = f"SELECT\n    {exprs}\nFROM {source}"
    return f"{sql}\nWHERE {where}" if where else sql


def columns_found(names: Sequence[str]) -> str:
    """The columns of a file, for an error message."""
    return ", ".join(repr(n) for n in names) if names else "(none)"
