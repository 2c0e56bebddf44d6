"""Generic CSV read straight from the file (no staging table): same rows as the staged read it
replaced, and bad rows anywhere in a large file still named, with nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from importer_support import EVENT_VIEW, NOW, rows

from wayline.errors import InputError
from wayline.events.importers import import_file
from wayline.events.importers.base import Context, Plan, fingerprint
from wayline.events.importers.runner import run_plan
from wayline.events.importers.tabular import (
    build_events,
    csv_header,
    csv_row_of,
    read_csv_sql,
    sniff_delimiter,
)
from wayline.storage.eventstore import EventStore

# More rows than the planner samples (2,000), so values past the sample are exercised too.
_ROWS = 5000


def _csv_text() -> str:
    lines = ["user_id,anonymous_id,event,timestamp,revenue,quantity,note"]
    for i in range(_ROWS):
        user = f"c{i % 37}" if i % 3 else ""
        revenue = f"{i % 90}.50" if i % 5 == 0 else ""
        # Late rows break the sampled kinds: the quantity turns to text, the note spans lines.
        quantity = "many" if i == 4321 else str(i % 7)
        note = '"two\nlines"' if i % 1000 == 999 else f"n{i}"
        lines.append(
            f"{user},a{i % 53},E{i % 4},2024-03-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z,"
            f"{revenue},{quantity},{note}"
        )
        if i % 1500 == 0:
            lines.append("")  # a blank line, skipped by the reader
    return "\n".join(lines) + "\n"


def _staged_plan(ctx: Context) -> Plan:
    """The plan the importer used before: the CSV copied into a temp table, rows by rowid."""
    delimiter = sniff_delimiter(ctx)
    names = csv_header(ctx, delimiter)
    stage = "CREATE OR REPLACE TEMP TABLE _wl_raw AS SELECT * FROM " + read_csv_sql(
        ctx, names, delimiter
    )
    source = "(SELECT rowid + 2 AS _row, * FROM _wl_raw) AS s"
    return Plan(
        format="csv",
        stage=[("reading CSV", stage)],
        source=source,
        build=lambda con: build_events(con, ctx, "csv", source, text_only=True),
        id_prefix=ctx.key + ":",
        temp_tables=["_wl_raw"],
        user_row=csv_row_of(ctx, delimiter),
    )


def test_direct_read_matches_the_staged_read(tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_text(_csv_text(), encoding="utf-8")
    with EventStore(tmp_path / "direct.duckdb") as direct:
        got = import_file(direct, f, now=NOW)
        direct_rows = rows(direct, EVENT_VIEW + " ORDER BY message_id")
        direct_ids = rows(direct, "SELECT * FROM identities ORDER BY ALL")
    ctx = Context(
        path=f,
        key=fingerprint(f),
        workspace_id="default",
        now=NOW,
        source_name=f"import:{f.name}",
    )
    with EventStore(tmp_path / "staged.duckdb") as staged:
        want = run_plan(staged, _staged_plan(ctx), path=f, workspace_id="default")
        staged_rows = rows(staged, EVENT_VIEW + " ORDER BY message_id")
        staged_ids = rows(staged, "SELECT * FROM identities ORDER BY ALL")
    assert got.rows_read == want.rows_read == got.events_loaded == _ROWS
    assert (got.customers, got.events_by_name) == (want.customers, want.events_by_name)
    assert direct_rows == staged_rows
    assert direct_ids == staged_ids and direct_ids  # identities were linked, the same way


def test_ragged_row_past_the_sample_names_its_line(store: EventStore, tmp_path: Path) -> None:
    lines = [f"u{i},E,2024-01-01T00:00:00Z" for i in range(_ROWS)]
    lines[4000] = "u,E"  # data record 4001: line 4002 of the file
    f = tmp_path / "e.csv"
    f.write_text("user_id,event,timestamp\n" + "\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="malformed CSV row") as err:
        import_file(store, f, now=NOW)
    assert (err.value.source, err.value.row) == ("e.csv", 4002)
    assert store.count() == 0


def test_ragged_row_after_a_bad_value_is_reported(store: EventStore, tmp_path: Path) -> None:
    # The load stops at the bad timestamp; locating it reads on and meets the broken row, which
    # is reported (as the staged read, which read the whole file first, did).
    lines = [f"u{i},E,2024-01-01T00:00:00Z" for i in range(_ROWS)]
    lines[2500] = "u,E,not a time"
    lines[4500] = "u,E,2024-01-01,extra"
    f = tmp_path / "e.csv"
    f.write_text("user_id,event,timestamp\n" + "\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="malformed CSV row") as err:
        import_file(store, f, now=NOW)
    assert (err.value.source, err.value.row) == ("e.csv", 4502)
    assert store.count() == 0
