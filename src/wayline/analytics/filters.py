"""Event filters, date ranges and breakdown values as SQL fragments with bound parameters.

Every analytic (funnels, paths, retention) selects events the same way, so the rules live here:

- A **property key** names a value on an event row. A column of the event row (``channel``,
  ``country``, ``device_type``, ``os``, ``page_path``, ``revenue``, ``currency``, ``source``,
  ``session_id``, ``event``, ``type``, ``user_id``, ``anonymous_id``) is read from that column;
  ``device`` and ``platform`` are aliases of ``device_type``. ``properties.NAME`` (or a bare
  ``NAME`` that is not a column) reads the event's ``properties`` JSON, ``context.NAME`` and
  ``traits.NAME`` read those JSON objects; dots go deeper (``properties.product.sku``).
  Values are compared as text, as JSON renders them: ``10``, ``10.5``, ``true``, ``"a"`` → ``a``.
- A :class:`PropertyFilter` is ``key op value``; ``op`` is one of ``eq`` ``neq`` ``in``
  ``not_in`` ``contains`` ``not_contains`` ``gt`` ``gte`` ``lt`` ``lte`` ``is_set``
  ``is_not_set``. Numeric operators compare numbers (a value that is not a number never
  matches); ``neq``/``not_in``/``not_contains`` also match events where the key is missing,
  as PostHog and Amplitude do.
- A **date range** is half-open, ``since <= timestamp < until``, in UTC.
- A **breakdown** value comes from the event (first-touch attribution is up to the caller, which
  knows which event is the first touch), from the person's profile traits (the latest
  ``$identify`` call that set the trait), or is the person's acquisition ``cohort``: the UTC month
  of their first event, ``YYYY-MM``.

Fragments are :class:`Sql` values: text in DuckDB's dialect with ``?`` placeholders and the
parameters in the order of the placeholders. Adding two fragments keeps text and parameters in
step, which is the only safe way to compose positional parameters. Key names are validated and
quoted into the text (sqlglot must see JSON paths as literals to transpile them); values are
always parameters. Where DuckDB and PostgreSQL differ (JSON extraction, numeric parsing) the
builders take the target ``dialect`` and write what :func:`wayline.analytics.backend.transpile`
turns into the right PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, get_args

from wayline.errors import InputError

Dialect = Literal["duckdb", "postgres"]
FilterOp = Literal[
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_set",
    "is_not_set",
]
FILTER_OPS: Final[tuple[str, ...]] = get_args(FilterOp)
Scalar = str | int | float | bool

#: Event-row columns a key may name directly, and whether they hold text.
EVENT_KEY_COLUMNS: Final[dict[str, str]] = {
    "event": "text",
    "type": "text",
    "user_id": "text",
    "anonymous_id": "text",
    "person_id": "text",
    "session_id": "text",
    "device_type": "text",
    "os": "text",
    "channel": "text",
    "country": "text",
    "page_path": "text",
    "currency": "text",
    "source": "text",
    "revenue": "decimal",
}
KEY_ALIASES: Final[dict[str, str]] = {"device": "device_type", "platform": "device_type"}
_JSON_ROOTS: Final = ("properties", "context", "traits")
_NAME = re.compile(r"^[^\x00-\x1f'\"\\]{1,200}$")
# A number as JSON (or a person) writes it; checked before casting on PostgreSQL, which has no
# TRY_CAST. No backslashes, so the pattern survives every layer of quoting unchanged.
_NUMBER_RE: Final = "^ *[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)? *$"


@dataclass(frozen=True)
class Sql:
    """A fragment of DuckDB-dialect SQL and the values of its ``?`` placeholders, in order."""

    text: str
    params: tuple[Any, ...] = ()

    def __add__(self, other: Sql | str) -> Sql:
        if isinstance(other, str):
            return Sql(self.text + other, self.params)
        return Sql(self.text + other.text, self.params + other.params)

    def __radd__(self, other: str) -> Sql:
        return Sql(other + self.text, self.params)

    @staticmethod
    def join(separator: str, parts: Iterable[Sql | str]) -> Sql:
        """The parts joined by ``separator``, parameters in the same order."""
        texts: list[str] = []
        params: list[Any] = []
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            else:
                texts.append(part.text)
                params.extend(part.params)
        return Sql(separator.join(texts), tuple(params))


@dataclass(frozen=True)
class PropertyFilter:
    """``key op value`` on one event row (see the module docstring for keys and operators).

    ``value`` is a scalar for comparisons, a tuple of scalars for ``in``/``not_in`` and
    ``None`` for ``is_set``/``is_not_set``.
    """

    key: str
    op: FilterOp = "eq"
    value: Scalar | tuple[Scalar, ...] | None = None

    def __post_init__(self) -> None:
        resolve_key(self.key)
        if self.op not in FILTER_OPS:
            raise InputError(
                f"unknown filter operator {self.op!r}; use one of {', '.join(FILTER_OPS)}",
                field="filter",
            )
        if self.op in ("is_set", "is_not_set"):
            return
        if self.op in ("in", "not_in"):
            if not isinstance(self.value, tuple) or not self.value:
                raise InputError(f"filter {self.key} {self.op} needs a list of values")
        elif self.value is None or isinstance(self.value, tuple):
            raise InputError(f"filter {self.key} {self.op} needs one value")
        if self.op in ("gt", "gte", "lt", "lte") and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise InputError(f"filter {self.key} {self.op} needs a number, got {self.value!r}")


@dataclass(frozen=True)
class ResolvedKey:
    """Where a key's value lives: an event column, or a path inside a JSON column."""

    column: str
    path: tuple[str, ...] = ()

    @property
    def is_json(self) -> bool:
        return bool(self.path)


def resolve_key(key: str) -> ResolvedKey:
    """A property key → the column (and JSON path) holding it; :class:`InputError` if invalid."""
    key = key.strip()
    if not key or not _NAME.match(key):
        raise InputError(f"invalid property key {key!r}", field="filter")
    key = KEY_ALIASES.get(key, key)
    if key in EVENT_KEY_COLUMNS:
        return ResolvedKey(key)
    root, _, rest = key.partition(".")
    if root in _JSON_ROOTS and rest:
        path = tuple(rest.split("."))
    else:
        root, path = "properties", tuple(key.split("."))
    if any(not part for part in path):
        raise InputError(f"invalid property key {key!r}: empty part", field="filter")
    return ResolvedKey(root, path)


def _col(column: str, alias: str | None) -> str:
    return f'{alias}."{column}"' if alias else f'"{column}"'


def json_text_sql(column_sql: str, path: Sequence[str], dialect: str) -> str:
    """Text of the JSON value at ``path`` inside the JSON column expression ``column_sql``."""
    if dialect == "postgres":
        # jsonb_extract_path_text passes through sqlglot untouched; sqlglot would turn DuckDB's
        # json_extract_string into json_extract_path_text, which does not accept JSONB.
        parts = ", ".join("'" + p + "'" for p in path)
        return f"jsonb_extract_path_text({column_sql}, {parts})"
    # Quoted path members so that keys with spaces or dots-free punctuation work.
    quoted = ".".join('"' + p + '"' for p in path)
    return f"json_extract_string({column_sql}, '$.{quoted}')"


def value_sql(key: str, *, alias: str | None = None, dialect: str = "duckdb") -> str:
    """An expression giving the key's value on an event row as text (NULL when absent)."""
    resolved = resolve_key(key)
    if resolved.is_json:
        return json_text_sql(_col(resolved.column, alias), resolved.path, dialect)
    if EVENT_KEY_COLUMNS[resolved.column] == "text":
        return _col(resolved.column, alias)
    return f"CAST({_col(resolved.column, alias)} AS VARCHAR)"


def _number_sql(text_expr: str, dialect: str) -> str:
    if dialect == "postgres":
        return (
            f"CASE WHEN regexp_matches({text_expr}, '{_NUMBER_RE}') "
            f"THEN CAST({text_expr} AS DOUBLE) END"
        )
    return f"TRY_CAST({text_expr} AS DOUBLE)"


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def filter_sql(f: PropertyFilter, *, alias: str | None = None, dialect: str = "duckdb") -> Sql:
    """One filter as a boolean SQL condition (never NULL) on an event row."""
    resolved = resolve_key(f.key)
    expr = value_sql(f.key, alias=alias, dialect=dialect)
    op = f.op
    if op == "is_set":
        return Sql(f"({expr} IS NOT NULL)")
    if op == "is_not_set":
        return Sql(f"({expr} IS NULL)")
    if op in ("gt", "gte", "lt", "lte"):
        sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        if not resolved.is_json and resolved.column == "revenue":
            num = f"CAST({_col('revenue', alias)} AS DOUBLE)"
        else:
            num = _number_sql(expr, dialect)
        return Sql(f"COALESCE({num} {sym} ?, FALSE)", (float(f.value),))  # type: ignore[arg-type]
    if op in ("in", "not_in"):
        values = tuple(_text(v) for v in f.value)  # type: ignore[union-attr]
        marks = ", ".join("?" for _ in values)
        if op == "in":
            return Sql(f"COALESCE({expr} IN ({marks}), FALSE)", values)
        return Sql(f"COALESCE({expr} NOT IN ({marks}), TRUE)", values)
    assert f.value is not None and not isinstance(f.value, tuple)
    text = _text(f.value)
    if not resolved.is_json and resolved.column == "revenue":
        # Money compares as a number, so 10 equals 10.00.
        cond = f"{_col('revenue', alias)} = CAST(? AS DECIMAL(18,2))"
        return Sql(
            f"COALESCE({cond}, FALSE)" if op == "eq" else f"COALESCE(NOT ({cond}), TRUE)", (text,)
        )
    if op == "eq":
        return Sql(f"COALESCE({expr} = ?, FALSE)", (text,))
    if op == "neq":
        return Sql(f"COALESCE({expr} <> ?, TRUE)", (text,))
    # contains / not_contains: strpos, because a LIKE pattern would need escaping and a literal
    # '%' in the text would clash with psycopg's placeholders.
    if op == "contains":
        return Sql(f"COALESCE(strpos({expr}, ?) > 0, FALSE)", (text,))
    return Sql(f"COALESCE(strpos({expr}, ?) = 0, TRUE)", (text,))


def filters_sql(
    filters: Iterable[PropertyFilter], *, alias: str | None = None, dialect: str = "duckdb"
) -> Sql:
    """All filters AND-ed together; ``TRUE`` when there are none."""
    parts = [filter_sql(f, alias=alias, dialect=dialect) for f in filters]
    if not parts:
        return Sql("TRUE")
    return Sql.join(" AND ", parts)


def date_range_sql(
    since: datetime | None,
    until: datetime | None,
    *,
    alias: str | None = None,
    column: str = "timestamp",
) -> Sql:
    """``since <= column < until`` (either side optional); ``TRUE`` for an open range."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InputError(f"{name} must be timezone-aware (UTC)", field=name)
    if since is not None and until is not None and since >= until:
        raise InputError(f"empty date range: since {since} is not before until {until}")
    parts: list[Sql] = []
    if since is not None:
        parts.append(Sql(f"{_col(column, alias)} >= ?", (since,)))
    if until is not None:
        parts.append(Sql(f"{_col(column, alias)} < ?", (until,)))
    return Sql.join(" AND ", parts) if parts else Sql("TRUE")


# ---------------------------------------------------------------------------------------------
# Parsing filters written on the command line


_FILTER_RE = re.compile(
    r"^\s*(?P<key>[^=!<>~?\s]+)\s*(?P<op>!=|>=|<=|=|>|<|!~|~|\?|!\?)\s*(?P<value>.*?)\s*$"
)
_OP_OF_SYMBOL: Final[dict[str, FilterOp]] = {
    "=": "eq",
    "!=": "neq",
    ">": "gt",
    ">=": "gte",
    "<": "lt",
    "<=": "lte",
    "~": "contains",
    "!~": "not_contains",
    "?": "is_set",
    "!?": "is_not_set",
}


def _scalar(text: str) -> Scalar:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_filter(text: str) -> PropertyFilter:
    """``key=value`` → a filter. Operators: ``= != > >= < <= ~ !~`` (contains), ``key?`` (is
    set), ``key!?`` (is not set); ``key=a|b`` means ``in`` (``!=`` with ``|``: ``not_in``)."""
    m = _FILTER_RE.match(text)
    if not m:
        raise InputError(f"cannot read filter {text!r}; write key=value, key>=10, key? …")
    key, symbol, value = m["key"], m["op"], m["value"]
    op = _OP_OF_SYMBOL[symbol]
    if op in ("is_set", "is_not_set"):
        if value:
            raise InputError(f"filter {text!r}: nothing may follow {symbol}")
        return PropertyFilter(key, op)
    if not value:
        raise InputError(f"filter {text!r} has no value")
    if op in ("eq", "neq") and "|" in value:
        values = tuple(v.strip() for v in value.split("|") if v.strip())
        return PropertyFilter(key, "in" if op == "eq" else "not_in", values)
    if op in ("gt", "gte", "lt", "lte"):
        number = _scalar(value)
        if isinstance(number, str):
            raise InputError(f"filter {text!r}: {symbol} needs a number")
        return PropertyFilter(key, op, number)
    return PropertyFilter(key, op, value)


# ---------------------------------------------------------------------------------------------
# Breakdowns


BreakdownKind = Literal["event", "trait", "cohort", "event_or_trait"]


@dataclass(frozen=True)
class Breakdown:
    """What to split results by. ``kind`` says where the value comes from:

    - ``event``: an event column or ``properties.``/``context.`` key, on the first-touch event;
    - ``trait``: a profile trait (``traits.NAME``/``trait.NAME``), the latest ``$identify`` value;
    - ``cohort``: the person's first-seen month;
    - ``event_or_trait``: a bare name that is no column (``persona``, ``plan``): the event
      property when the first-touch event has it, else the profile trait.
    """

    key: str
    kind: BreakdownKind
    path: tuple[str, ...] = ()


def resolve_breakdown(key: str) -> Breakdown:
    """A breakdown name as given by a user → where its value comes from."""
    name = key.strip()
    if name == "cohort":
        return Breakdown(name, "cohort")
    root, _, rest = name.partition(".")
    if root in ("trait", "traits") and rest:
        resolve_key(f"traits.{rest}")
        return Breakdown(name, "trait", tuple(rest.split(".")))
    resolved = resolve_key(name)
    if resolved.is_json and root not in _JSON_ROOTS:
        return Breakdown(name, "event_or_trait", resolved.path)
    return Breakdown(name, "event", resolved.path)


def latest_trait_sql(
    path: Sequence[str], *, workspace_id: str, dialect: str = "duckdb", table: str = "events"
) -> Sql:
    """``SELECT person_id, value``: each person's trait at ``path``, from the latest
    ``$identify`` call that set it (ties on time: the greatest value, so the answer does not
    depend on row order)."""
    value = json_text_sql('"traits"', path, dialect)
    return Sql(
        "SELECT person_id, value FROM ("
        f"SELECT person_id, {value} AS value, row_number() OVER ("
        f"PARTITION BY person_id ORDER BY timestamp DESC, {value} DESC) AS rn "
        f"FROM {table} WHERE workspace_id = ? AND event = '$identify' AND {value} IS NOT NULL"
        ") AS _traits WHERE rn = 1",
        (workspace_id,),
    )


def cohort_sql(*, workspace_id: str, table: str = "events") -> Sql:
    """``SELECT person_id, value``: each person's first-seen month (UTC) as ``YYYY-MM``."""
    first = "(min(timestamp) AT TIME ZONE 'UTC')"
    return Sql(
        "SELECT person_id, "
        f"CAST(EXTRACT(YEAR FROM {first}) AS VARCHAR) || '-' || "
        f"lpad(CAST(EXTRACT(MONTH FROM {first}) AS VARCHAR), 2, '0') AS value "
        f"FROM {table} WHERE workspace_id = ? GROUP BY person_id",
        (workspace_id,),
    )
