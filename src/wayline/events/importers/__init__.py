"""Importers: files of events and orders → event rows in the DuckDB store, whole or not at all.

Formats (one module each; :mod:`.base` and :mod:`.runner` hold what they share):

    csv, jsonl, parquet   generic event files with a column mapping       (tabular)
    ga4                   Google Analytics 4 BigQuery export as JSON lines (ga4)
    shopify               Shopify admin "Export orders" CSV               (shopify)
    woocommerce           WooCommerce order export CSV                    (woocommerce)

``import_file`` is the entry point: it finds the format (``auto`` looks at the extension and the
header), plans the import as SQL and runs it. Message ids are deterministic, so importing the same
file twice is detected: a generic or GA4 file already imported is refused whole; orders, keyed by
their order number, are skipped one by one when already stored (an overlapping export adds only
what is new).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import orjson

from wayline.errors import InputError
from wayline.events.importers.base import Context, ImportResult, Plan, fingerprint
from wayline.events.importers.ga4 import plan_ga4
from wayline.events.importers.runner import ProgressFn, run_plan
from wayline.events.importers.shopify import SHOPIFY_SIGNATURE, plan_shopify
from wayline.events.importers.tabular import plan_csv, plan_jsonl, plan_parquet
from wayline.events.importers.woocommerce import is_woocommerce_header, plan_woocommerce
from wayline.storage.eventstore import EventStore

__all__ = ["FORMATS", "ImportResult", "ProgressFn", "detect_format", "import_file"]

_PLANNERS: dict[str, Callable[[Context], Plan]] = {
    "csv": plan_csv,
    "jsonl": plan_jsonl,
    "parquet": plan_parquet,
    "ga4": plan_ga4,
    "shopify": plan_shopify,
    "woocommerce": plan_woocommerce,
}
FORMATS = ("auto", *_PLANNERS)


def _csv_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = fh.readline()
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    return [h.strip() for h in next(csv.reader([first], delimiter=delimiter), [])]


def detect_format(path: Path) -> str:
    """The format of a file, from its extension and its first line."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson", ".json"):
        with path.open("rb") as fh:
            first = fh.readline()
        try:
            row = orjson.loads(first) if first.strip() else {}
        except orjson.JSONDecodeError:
            return "jsonl"  # the import names the bad line
        if isinstance(row, dict) and "event_name" in row and "event_timestamp" in row:
            return "ga4"
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        header = _csv_header(path)
        if set(header) >= SHOPIFY_SIGNATURE:
            return "shopify"
        if is_woocommerce_header(header):
            return "woocommerce"
        return "csv"
    raise InputError(
        f"cannot tell the format from the extension {suffix!r}; "
        f"give --format ({', '.join(f for f in FORMATS if f != 'auto')})",
        source=path.name,
    )


def import_file(
    store: EventStore,
    path: Path | str,
    *,
    now: datetime,
    format: str = "auto",
    workspace_id: str = "default",
    mapping: Mapping[str, str] | None = None,
    event_name: str | None = None,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Import one file into ``store``'s events, in one transaction, then resolve identities.

    Args:
        now: the import's time (every row's ``received_at``); aware UTC.
        format: one of ``FORMATS``; ``auto`` detects it.
        mapping: event-row field → column (generic formats): ``{"user_id": "email"}``.
        event_name: the event of every row, for a file without an event column.
        dry_run: do everything, then roll back: validates the file and reports what it holds.
        progress: called with (stage, percent or None) while DuckDB works.

    Raises:
        InputError: the file cannot be read or a row is wrong (naming file, row and column),
            or it was imported before. Nothing is stored then.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", source=str(path))
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in _PLANNERS:
        raise InputError(
            f"unknown format {format!r}; expected one of {', '.join(FORMATS)}", source=path.name
        )
    if mapping and fmt not in ("csv", "jsonl", "parquet"):
        raise InputError(
            f"--map applies to generic csv/jsonl/parquet files, not to {fmt}", source=path.name
        )
    ctx = Context(
        path=path,
        key=fingerprint(path),
        workspace_id=workspace_id,
        now=now,
        source_name=f"import:{path.name}",
        mapping=dict(mapping or {}),
        event_name=event_name,
    )
    plan = _PLANNERS[fmt](ctx)
    return run_plan(
        store,
        plan,
        path=path,
        workspace_id=workspace_id,
        dry_run=dry_run,
        progress=progress,
    )
