"""Runs an import plan against the event store: whole or not at all, fast, and precise on failure.

The order of work:

1. *Stage*: the file is read by DuckDB's reader into session-local temp tables (or read straight
   from the file, for Parquet). Reader errors (a ragged CSV row, broken JSON) become an
   :class:`~wayline.errors.InputError` with the line DuckDB reports.
2. *Re-import check*: for file-derived message ids, any of them already stored means the file was
   imported before, and it is refused whole.
3. *Load*: one ``INSERT … SELECT`` with strict casts inside one transaction. Any refusal (a value
   that does not cast, a required column that is NULL) rolls everything back.
4. *Locate*, only after a refusal: the plan's checks run over the staged rows in row order, and
   the first failing one names the row, the column and the value.
5. *Summarise* the rows just written, resolve identities (anonymous visitors link to the
   customers they turned out to be) in the same transaction, and commit (or roll back, for a
   dry run): the events and the person ids they imply land together.

A progress callback, when given, receives DuckDB's own progress of each long statement (polled
from a thread: the work stays inside DuckDB, never a Python loop over rows).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson

from wayline.errors import InputError
from wayline.events.importers.base import Check, ImportResult, Plan, lit, q
from wayline.storage.eventstore import EventStore
from wayline.storage.identity import resolve_identities

#: Receives (what is happening, percent done or None when unknown).
ProgressFn = Callable[[str, float | None], None]

_POLL_SECONDS = 0.1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@contextmanager
def _polling(con: Any, label: str, progress: ProgressFn | None) -> Iterator[None]:
    """Report DuckDB's progress of the statement run inside the block."""
    if progress is None:
        yield
        return
    progress(label, None)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(_POLL_SECONDS):
            try:
                pct = float(con.query_progress())
            except duckdb.Error:  # no statement running at this instant
                continue
            if pct >= 0:
                progress(label, pct)

    thread = threading.Thread(target=poll, name="import-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        progress(label, 100.0)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _reader_error(exc: duckdb.Error, path: Path) -> InputError:
    """A DuckDB reader error as an InputError with the row it names."""
    text = str(exc)
    text = re.sub(r"^[A-Za-z ]*Error: ", "", text.strip())
    row: int | None = None
    column: str | None = None
    if m := re.search(r"CSV Error on Line: (\d+)", text):
        row = int(m.group(1))
        # The reason is the line after "Original Line: …", before DuckDB's "Possible fixes".
        body = text.split("Possible fixes")[0].splitlines()
        reasons = [
            ln.strip()
            for ln in body[1:]
            if ln.strip() and not ln.startswith("Original Line") and "Possible" not in ln
        ]
        reason = reasons[-1] if reasons else "malformed row"
        if c := re.search(r'column "([^"]+)"', reason):
            column = c.group(1)
        return InputError(f"malformed CSV row: {reason}", source=path.name, row=row, field=column)
    if m := re.search(r"in line (\d+)", text):
        row = int(m.group(1))
    return InputError(_first_line(text), source=path.name, row=row)


def _json_syntax_error(path: Path) -> InputError | None:
    """The first line of a JSON Lines file that is not one JSON object (the slow, exact pass)."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                # exc.msg without orjson's own "line 1 column …": the row is the line.
                return InputError(
                    f"invalid JSON: {exc.msg} (at character {exc.pos + 1})",
                    source=path.name,
                    row=number,
                )
            if not isinstance(value, dict):
                return InputError("expected one JSON object per line", source=path.name, row=number)
    return None


def _read_error(plan: Plan, path: Path, exc: duckdb.Error) -> InputError:
    """A file DuckDB's reader refused, named precisely (for JSON Lines, by a line-by-line pass)."""
    if plan.format in ("jsonl", "ga4") and (found := _json_syntax_error(path)):
        return found
    return _reader_error(exc, path)


def _locate(con: Any, plan: Plan, checks: list[Check], path: Path) -> InputError | None:
    """The first bad row of the staged file, by the plan's checks (None when all pass)."""
    if not checks:
        return None
    cases = " ".join(f"WHEN {c.bad_sql} THEN {i}" for i, c in enumerate(checks))
    # The CASE sits in a subquery: a check may use a window (an order's rows), not allowed in
    # a WHERE clause.
    found = con.execute(
        f"SELECT _row, failed FROM (SELECT _row, CASE {cases} END AS failed FROM {plan.source}) "
        "WHERE failed IS NOT NULL ORDER BY _row LIMIT 1"
    ).fetchone()
    if found is None:
        return None
    staged_row, index = int(found[0]), int(found[1])
    row = plan.user_row(staged_row) if plan.user_row else staged_row
    check = checks[index]
    message = check.message
    if check.value_sql is not None:
        value = con.execute(
            f"SELECT CAST({check.value_sql} AS VARCHAR) FROM {plan.source} WHERE _row = ?",
            [staged_row],
        ).fetchone()
        if value is not None and value[0] is not None:
            message = f"{message}: {value[0]!r}"
    return InputError(message, source=path.name, row=row, field=check.field)


def _is_reader_error(exc: duckdb.Error) -> bool:
    """Whether DuckDB's CSV reader refused the file (a plan reading straight from the file
    meets those while loading or locating, not while staging)."""
    return "CSV Error on Line" in str(exc)


def _load_error(
    con: Any, plan: Plan, checks: list[Check], path: Path, exc: duckdb.Error
) -> InputError:
    if _is_reader_error(exc):
        return _reader_error(exc, path)
    try:
        located = _locate(con, plan, checks, path)
    except duckdb.Error as locating:
        # The checks read the whole file: a malformed row after the first bad value.
        if _is_reader_error(locating):
            return _reader_error(locating, path)
        raise
    if located is not None:
        return located
    # Nothing a check knows about: report DuckDB's own words, still naming the file.
    return InputError(_first_line(re.sub(r"^[A-Za-z ]*Error: ", "", str(exc))), source=path.name)


def _from_epoch_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=int(value))


def run_plan(
    store: EventStore,
    plan: Plan,
    *,
    path: Path,
    workspace_id: str,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Execute ``plan``: stage, check for a re-import, load in one transaction, summarise."""
    started = time.perf_counter()
    con = store.con
    # DuckDB tracks progress only with its bar on; ours draws it (or nothing, off a terminal),
    # so DuckDB's own printing stays off.
    con.execute(f"SET enable_progress_bar = {'true' if progress is not None else 'false'}")
    con.execute("SET enable_progress_bar_print = false")
    try:
        for label, sql in plan.stage:
            try:
                with _polling(con, label, progress):
                    con.execute(sql)
            except duckdb.Error as exc:
                raise _read_error(plan, path, exc) from None
        return _load(store, plan, path, workspace_id, dry_run, progress, started)
    finally:
        for table in plan.temp_tables:
            con.execute(f"DROP TABLE IF EXISTS {q(table)}")


def _load(
    store: EventStore,
    plan: Plan,
    path: Path,
    workspace_id: str,
    dry_run: bool,
    progress: ProgressFn | None,
    started: float,
) -> ImportResult:
    con = store.con
    try:
        built = plan.build(con)
    except duckdb.Error as exc:  # the sample a plan looks at may already hold a bad row
        raise _read_error(plan, path, exc) from None
    events_sql, checks = built.events_sql, built.checks
    rows_read: int | None = None
    if not built.one_event_per_row:
        counted = con.execute(f"SELECT count(*) FROM {plan.source}").fetchone()
        rows_read = int(counted[0]) if counted else 0
    if built.duplicates == "refuse" and plan.id_prefix:
        seen = con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE workspace_id = ? "
            "AND starts_with(message_id, ?) LIMIT 1)",
            [workspace_id, plan.id_prefix],
        ).fetchone()
        if seen and seen[0]:
            raise InputError(
                "this file was already imported into workspace "
                f"{workspace_id!r}; nothing loaded (the whole file is refused)",
                source=path.name,
            )
    con.execute("BEGIN")
    try:
        try:
            with _polling(con, "loading", progress):
                if built.duplicates == "skip":
                    # Natural ids: drop the rows already stored, load the rest.
                    con.execute(f"CREATE OR REPLACE TEMP TABLE _wl_new AS {events_sql}")
                    produced = con.execute("SELECT count(*) FROM _wl_new").fetchone()
                    total = int(produced[0]) if produced else 0
                    if rows_read is None:
                        rows_read = total
                    con.execute(
                        "DELETE FROM _wl_new WHERE message_id IN (SELECT message_id FROM events "
                        "WHERE workspace_id = ?) OR rowid NOT IN "
                        "(SELECT min(rowid) FROM _wl_new GROUP BY message_id)",
                        [workspace_id],
                    )
                    con.execute("INSERT INTO events SELECT * FROM _wl_new")
                    mine = "_wl_new"
                else:
                    inserted = con.execute(f"INSERT INTO events {events_sql}").fetchone()
                    total = None
                    if rows_read is None:
                        rows_read = int(inserted[0]) if inserted else 0
                    # The file's ids were checked absent above: the rows with them are this load.
                    mine = (
                        f"events WHERE workspace_id = {lit(workspace_id)} "
                        f"AND starts_with(message_id, {lit(plan.id_prefix)})"
                    )
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise _load_error(con, plan, checks, path, exc) from None
        by_name = {
            str(name): int(n)
            for name, n in con.execute(
                f"SELECT event, count(*) FROM {mine} GROUP BY event ORDER BY 2 DESC, 1"
            ).fetchall()
        }
        stats = con.execute(
            "SELECT count(*), count(DISTINCT person_id), "
            f'epoch_us(min("timestamp")), epoch_us(max("timestamp")) FROM {mine}'
        ).fetchone()
        assert stats is not None
        if stats[0] and not dry_run:
            # In the load's own transaction: the import and the person ids it implies land
            # together, and rewriting person_id on rows this transaction appended is cheaper
            # than on committed rows (no old versions to keep).
            with _polling(con, "linking identities", progress):
                resolve_identities(store, workspace_id)
        with _polling(con, "rolling back (dry run)" if dry_run else "committing", progress):
            con.execute("ROLLBACK" if dry_run else "COMMIT")
    except BaseException:
        # Roll back whatever is still open; a rollback after a finished one is harmless.
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS _wl_new")
    loaded = int(stats[0])
    assert rows_read is not None  # counted up front, or set by the load
    return ImportResult(
        file=path.name,
        format=plan.format,
        rows_read=rows_read,
        events_loaded=loaded,
        skipped=0 if total is None else total - loaded,
        events_by_name=by_name,
        customers=int(stats[1]),
        first_timestamp=_from_epoch_us(stats[2]),
        last_timestamp=_from_epoch_us(stats[3]),
        seconds=time.perf_counter() - started,
        dry_run=dry_run,
    )
