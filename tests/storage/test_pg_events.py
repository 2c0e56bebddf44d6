"""The PostgreSQL copy of the events table: same rows, same answers as DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from wayline.analytics.backend import DuckDBBackend, PostgresBackend
from wayline.events.normalize import normalize
from wayline.events.schema import EVENT_COLUMNS
from wayline.storage import pg_events
from wayline.storage.eventstore import EventStore, rows_to_arrow
from wayline.storage.identity import resolve_identities
from wayline.storage.pg_events import (
    copy_arrow,
    copy_from_duckdb,
    create_events_table,
    psycopg_url,
)

T0 = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def test_psycopg_url_drops_the_driver() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dt_1"
    assert (
        psycopg_url(url) == "postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dt_1"
    )
    assert psycopg_url("postgresql://h/db") == "postgresql://h/db"


def sample_rows() -> list[dict[str, Any]]:
    """Rows that stress the CSV path: NULL vs empty, quotes, newlines, unicode, money, µs."""
    messages: list[dict[str, Any]] = [
        {"type": "page", "anonymousId": "a1", "properties": {"path": "/"}},
        {
            "type": "track",
            "event": 'Order "Completed"',
            "anonymousId": "a1",
            "userId": "u1",
            "properties": {"revenue": "1234.5", "currency": "EUR", "note": 'a,b\nc "d" ñ €'},
            "context": {"userAgent": "Mozilla/5.0 (iPhone)", "location": {"country": "PT"}},
        },
        {"type": "identify", "userId": "u1", "anonymousId": "", "traits": {"email": ""}},
        {"type": "alias", "userId": "u2", "previousId": "u1"},
        {"type": "track", "event": "Refund", "userId": "u2", "properties": {"total": -0.01}},
    ]
    rows = []
    for i, message in enumerate(messages):
        message = {**message, "messageId": f"m{i}", "timestamp": (T0 + timedelta(i)).isoformat()}
        rows.append(normalize(message, workspace_id="w", received_at=T0, source="test"))
    return rows


@pytest.fixture
def conn(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(psycopg_url(postgres_url)) as connection:
        create_events_table(connection)
        yield connection


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.duckdb") as s:
        s.append_rows(sample_rows())
        s.append_rows(
            [
                dict(row, workspace_id="other", message_id="o" + row["message_id"])
                for row in sample_rows()
            ]
        )
        yield s


def select_all(cur: Any, *, json_as_text: bool) -> list[tuple[Any, ...]]:
    columns = ", ".join(
        f'"{name}"::VARCHAR' if json_as_text and kind == "JSON" else f'"{name}"'
        for name, kind in EVENT_COLUMNS.items()
    )
    rows = cur.execute(f"SELECT {columns} FROM events ORDER BY message_id").fetchall()
    json_at = [i for i, kind in enumerate(EVENT_COLUMNS.values()) if kind == "JSON"]
    out = []
    for row in rows:
        values = list(row)
        for i in json_at:  # compare JSON by value: JSONB reorders keys and respaces
            value = values[i]
            values[i] = orjson.loads(value) if isinstance(value, str) else value
        out.append(tuple(values))
    return out


@pytest.mark.postgres
def test_copy_arrow_round_trips_every_column(conn: psycopg.Connection[Any]) -> None:
    rows = sample_rows()
    assert copy_arrow(conn, rows_to_arrow(rows)) == len(rows)
    with EventStore(":memory:") as duck:
        duck.append_rows(rows)
        expected = select_all(duck.con, json_as_text=True)
    actual = select_all(conn, json_as_text=False)
    assert actual == expected
    # NULL and the empty string stay apart through CSV.
    assert conn.execute(
        "SELECT anonymous_id IS NULL, traits->>'email' FROM events WHERE message_id = 'm2'"
    ).fetchone() == (True, "")


@pytest.mark.postgres
def test_copy_from_duckdb_one_workspace_or_all(
    store: EventStore, conn: psycopg.Connection[Any]
) -> None:
    assert copy_from_duckdb(store, conn, workspace_id="w") == 5
    assert conn.execute("SELECT DISTINCT workspace_id FROM events").fetchall() == [("w",)]
    assert copy_from_duckdb(store, conn) == 10
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (15,)
    assert copy_from_duckdb(store, conn, workspace_id="nobody") == 0


@pytest.mark.postgres
def test_a_failed_load_leaves_nothing(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_events, "BATCH_ROWS", 2)  # the bad row is in a later batch
    table = rows_to_arrow(sample_rows())
    bad = table.set_column(
        table.schema.get_field_index("properties"),
        "properties",
        [["{}", "{}", "{}", "{}", "not json"]],
    )
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        copy_arrow(conn, bad)
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)


@pytest.mark.postgres
def test_same_query_same_answer_on_both_engines(
    store: EventStore, conn: psycopg.Connection[Any]
) -> None:
    resolve_identities(store, "w")
    copy_from_duckdb(store, conn)
    sql = """
        SELECT person_id, event, count(*) AS n, sum(revenue) AS revenue,
               min("timestamp") AS first_seen
        FROM events WHERE workspace_id = ?
        GROUP BY person_id, event ORDER BY person_id, event
    """
    duck = DuckDBBackend(store.con).fetch(sql, ["w"])
    assert {row[0] for row in duck} == {"u2"}  # identities resolved before the copy
    assert PostgresBackend(conn).fetch(sql, ["w"]) == duck
