"""Generic CSV, JSON Lines and Parquet files: mapping, parsing, errors, atomicity, re-imports."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from importer_support import DATA, EVENT_VIEW, NOW, rows

from wayline.errors import InputError
from wayline.events.importers import detect_format, import_file
from wayline.events.importers.tabular import resolve_columns
from wayline.storage.eventstore import EventStore

CSV_MAP = {"user_id": "customer", "timestamp": "occurred_at"}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_mapping(store: EventStore) -> None:
    result = import_file(store, DATA / "events.csv", now=NOW, mapping=CSV_MAP)
    assert (result.format, result.rows_read, result.events_loaded) == ("csv", 5, 5)
    assert result.events_by_name == {"Product Viewed": 3, "Product Added": 1, "Order Completed": 1}
    got = rows(store, EVENT_VIEW + " ORDER BY message_id")
    by_row = {r["message_id"].rsplit(":", 1)[1]: r for r in got}
    first = by_row["2"]  # the first data row is row 2 of the spreadsheet
    assert first["user_id"] == "c-1" and first["anonymous_id"] == "anon-1"
    assert first["ts"] == "2024-06-01T10:00:00.000000"
    assert first["source"] == "import:events.csv" and first["type"] == "track"
    assert (first["channel"], first["country"], first["session_id"]) == ("search", "DE", "s-1")
    assert first["page_path"] == "/products/mug"
    props = json.loads(first["properties"])
    # Numbers sniffed as numbers, booleans as booleans; identity columns are not properties.
    assert (
        props["price"] == 18.0 and props["in_stock"] is True and props["product_id"] == "MUG-SAND"
    )
    assert "customer" not in props and "occurred_at" not in props and "session_id" not in props
    assert by_row["3"]["ts"] == "2024-06-01T08:01:30.000000"  # +02:00 → UTC
    assert by_row["4"]["ts"] == "2024-06-01T10:05:00.000000"  # naive → UTC
    assert by_row["4"]["revenue"] == Decimal("36.00") and by_row["4"]["currency"] == "EUR"
    assert by_row["5"]["ts"] == "2024-06-01T10:00:00.000000"  # epoch seconds
    assert by_row["5"]["user_id"] is None and by_row["5"]["person_id"] == "anon-2"
    assert by_row["6"]["ts"] == "2024-06-01T10:01:00.000000"  # epoch milliseconds
    assert by_row["6"]["channel"] == "direct"  # "Direct" is a known channel
    assert json.loads(by_row["6"]["properties"])["product_id"] == "BOWL-MOSS, large"


def test_csv_event_name_for_every_row(store: EventStore, tmp_path: Path) -> None:
    f = write(tmp_path / "signups.csv", "email,signed_up\nx@example.com,2024-01-01T00:00:00Z\n")
    result = import_file(
        store,
        f,
        now=NOW,
        event_name="Signed Up",
        mapping={"user_id": "email", "timestamp": "signed_up"},
    )
    assert result.events_by_name == {"Signed Up": 1}


def test_semicolon_csv(store: EventStore, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", "user_id;event;timestamp\nu1;Viewed;2024-01-01T00:00:00Z\n")
    assert import_file(store, f, now=NOW).events_loaded == 1


def test_jsonl_segment_dump(store: EventStore) -> None:
    result = import_file(store, DATA / "events.jsonl", now=NOW)
    assert (result.format, result.events_loaded) == ("jsonl", 3)
    got = rows(store, EVENT_VIEW + " ORDER BY message_id")
    assert [r["user_id"] for r in got] == ["c-1", "c-1", None]
    assert got[0]["anonymous_id"] == "a-1"
    assert json.loads(got[0]["properties"]) == {"product_id": "MUG-SAND", "price": 18.0}
    assert json.loads(got[0]["context"]) == {"page": {"path": "/products/mug"}}
    order = got[1]
    assert order["revenue"] == Decimal("36.00") and order["currency"] == "EUR"
    assert json.loads(order["properties"])["order_id"] == "o-1"
    assert got[2]["ts"] == "2024-06-01T10:00:00.000000"  # a number among ISO strings


def test_parquet_typed(store: EventStore, tmp_path: Path) -> None:
    f = tmp_path / "events.parquet"
    table = pa.table(
        {
            "user_id": ["u1", "u2", None],
            "anonymous_id": [None, "a2", "a3"],
            "event": ["Viewed", "Ordered", "Viewed"],
            "timestamp": pa.array(
                [1_700_000_000_000_000, 1_700_000_060_000_000, 1_700_000_120_000_000],
                pa.timestamp("us", tz="UTC"),
            ),
            "revenue": [None, 12.345, None],
            "device_type": ["iOS", "desktop", "fridge"],
            "sku": ["A", "B", None],
        }
    )
    pq.write_table(table, f)
    assert detect_format(f) == "parquet"
    result = import_file(store, f, now=NOW)
    assert result.events_loaded == 3 and result.customers == 3
    got = rows(store, EVENT_VIEW + " ORDER BY ts")
    assert [r["device_type"] for r in got] == ["mobile", "desktop", None]
    assert got[1]["revenue"] == Decimal("12.35") and got[1]["person_id"] == "u2"
    assert got[0]["ts"] == "2023-11-14T22:13:20.000000"
    assert json.loads(got[0]["properties"])["sku"] == "A"


def test_reimport_is_refused_whole(store: EventStore, tmp_path: Path) -> None:
    import_file(store, DATA / "events.csv", now=NOW, mapping=CSV_MAP)
    copy = tmp_path / "renamed.csv"
    shutil.copy(DATA / "events.csv", copy)
    with pytest.raises(InputError, match="already imported"):
        import_file(store, copy, now=NOW, mapping=CSV_MAP)
    assert store.count() == 5
    # Another workspace is another store of data.
    assert import_file(store, copy, now=NOW, mapping=CSV_MAP, workspace_id="w2").events_loaded == 5


def test_message_id_column_skips_stored_rows(store: EventStore, tmp_path: Path) -> None:
    head = "message_id,user_id,event,timestamp\n"
    a = write(
        tmp_path / "a.csv", head + "m1,u,E,2024-01-01T00:00:00Z\nm2,u,E,2024-01-02T00:00:00Z\n"
    )
    b = write(
        tmp_path / "b.csv",
        head + "m2,u,E,2024-01-02T00:00:00Z\nm3,u,E,2024-01-03T00:00:00Z\n"
        "m3,u,E,2024-01-03T00:00:00Z\n",
    )
    import_file(store, a, now=NOW)
    result = import_file(store, b, now=NOW)
    assert (result.events_loaded, result.skipped) == (1, 2)  # m2 stored, m3 twice in b
    assert store.count() == 3


def test_dry_run_stores_nothing(store: EventStore) -> None:
    result = import_file(store, DATA / "events.csv", now=NOW, mapping=CSV_MAP, dry_run=True)
    assert result.dry_run and result.events_loaded == 5
    assert store.count() == 0


# --- bad input: file, row (as a spreadsheet/editor shows it) and column are named ---------


def test_missing_column_lists_the_columns(store: EventStore, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", "who,what,when\nu,E,2024-01-01\n")
    with pytest.raises(InputError) as err:
        import_file(store, f, now=NOW, mapping={"user_id": "who", "event": "what"})
    assert err.value.source == "e.csv" and err.value.field == "timestamp"
    assert "'who', 'what', 'when'" in str(err.value)


def test_mapping_to_a_missing_column(store: EventStore, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", "user_id,event,timestamp\nu,E,2024-01-01\n")
    with pytest.raises(InputError, match="no column 'mail'") as err:
        import_file(store, f, now=NOW, mapping={"user_id": "mail"})
    assert err.value.field == "mail"


def test_bad_timestamp_names_row_and_column_and_nothing_lands(
    store: EventStore, tmp_path: Path
) -> None:
    lines = [f"u{i},Viewed,2024-01-01T00:00:{i % 60:02d}Z" for i in range(1, 500)]
    lines[299] = "u300,Viewed,yesterday at noon"  # the 301st data row: spreadsheet row 301
    f = write(tmp_path / "e.csv", "user_id,event,timestamp\n" + "\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        import_file(store, f, now=NOW)
    assert (err.value.source, err.value.row, err.value.field) == ("e.csv", 301, "timestamp")
    assert "yesterday at noon" in str(err.value)
    assert store.count() == 0


def test_non_numeric_revenue(store: EventStore, tmp_path: Path) -> None:
    f = write(
        tmp_path / "e.csv",
        "user_id,event,timestamp,revenue\nu,Paid,2024-01-01,10.00\nu,Paid,2024-01-02,ten\n",
    )
    with pytest.raises(InputError, match=r"not an amount.*'ten'") as err:
        import_file(store, f, now=NOW)
    assert (err.value.row, err.value.field) == (3, "revenue")
    assert store.count() == 0


def test_missing_identity(store: EventStore, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", "user_id,event,timestamp\nu,E,2024-01-01\n,E,2024-01-02\n")
    with pytest.raises(InputError, match="user id") as err:
        import_file(store, f, now=NOW)
    assert (err.value.row, err.value.field) == (3, "user_id")


def test_csv_rows_are_spreadsheet_rows(store: EventStore, tmp_path: Path) -> None:
    text = 'user_id,event,timestamp\nu,"two\nlines",2024-01-01\n\nu,E,soon\n'
    with pytest.raises(InputError, match="soon") as err:
        import_file(store, write(tmp_path / "e.csv", text), now=NOW)
    assert err.value.row == 4  # header, a two-line value (one row), a blank row, the bad one


def test_ragged_csv_row(store: EventStore, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", "user_id,event,timestamp\nu,E,2024-01-01\nu,E\n")
    with pytest.raises(InputError, match="malformed CSV row") as err:
        import_file(store, f, now=NOW)
    assert (err.value.source, err.value.row) == ("e.csv", 3)


def test_jsonl_rows_are_file_lines(store: EventStore, tmp_path: Path) -> None:
    good = '{"user_id": "u", "event": "E", "timestamp": "2024-01-01T00:00:00Z"}\n'
    f = write(tmp_path / "e.jsonl", good + "\n" + good.replace("2024-01-01T00:00:00Z", "soon"))
    with pytest.raises(InputError, match="soon") as err:
        import_file(store, f, now=NOW)
    assert err.value.row == 3  # the blank line 2 counts


def test_empty_files(store: EventStore, tmp_path: Path) -> None:
    for name in ("e.jsonl", "e.csv"):
        with pytest.raises(InputError, match="empty"):
            import_file(store, write(tmp_path / name, "\n"), now=NOW)
    header_only = write(tmp_path / "h.csv", "user_id,event,timestamp\n")
    assert import_file(store, header_only, now=NOW).events_loaded == 0


def test_json_syntax_error_names_the_line(store: EventStore, tmp_path: Path) -> None:
    good = '{"user_id": "u", "event": "E", "timestamp": "2024-01-01T00:00:00Z"}\n'
    f = write(tmp_path / "e.jsonl", good * 3 + '{"user_id": "u", "event": "E"\n' + good)
    with pytest.raises(InputError, match="invalid JSON") as err:
        import_file(store, f, now=NOW)
    assert (err.value.source, err.value.row) == ("e.jsonl", 4)
    assert store.count() == 0


def test_unknown_extension(store: EventStore, tmp_path: Path) -> None:
    f = write(tmp_path / "e.xlsx", "")
    with pytest.raises(InputError, match="--format"):
        import_file(store, f, now=NOW)


def test_resolve_columns_defaults_ignore_case_and_punctuation() -> None:
    chosen = resolve_columns(
        ["userId", "Event Name", "TimeStamp", "Page Path"], {}, file="f", event_name=None
    )
    assert chosen == {
        "user_id": "userId",
        "event": "Event Name",
        "timestamp": "TimeStamp",
        "page_path": "Page Path",
    }


def test_segment_call_types(store: EventStore, tmp_path: Path) -> None:
    lines = [
        {
            "type": "identify",
            "userId": "c-9",
            "anonymousId": "a-9",
            "timestamp": "2024-06-01",
            "traits": {"email": "c9@example.com"},
        },
        {
            "type": "page",
            "anonymousId": "a-9",
            "timestamp": "2024-06-01T00:01:00Z",
            "properties": {"path": "/"},
        },
        {
            "type": "track",
            "userId": "c-9",
            "event": "Order Completed",
            "timestamp": "2024-06-01T00:02:00Z",
        },
    ]
    f = write(tmp_path / "segment.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    result = import_file(store, f, now=NOW)
    assert result.events_by_name == {"$identify": 1, "$page": 1, "Order Completed": 1}
    got = {r["event"]: r for r in rows(store, EVENT_VIEW)}
    assert got["$identify"]["type"] == "identify"
    assert json.loads(got["$identify"]["traits"]) == {"email": "c9@example.com"}
    assert got["$page"]["person_id"] == "c-9"  # linked by the identify call
    bad = write(tmp_path / "bad.jsonl", json.dumps({**lines[2], "type": "purchase"}) + "\n")
    with pytest.raises(InputError, match=r"unknown call type.*'purchase'") as err:
        import_file(store, bad, now=NOW)
    assert (err.value.row, err.value.field) == (1, "type")


def test_parquet_bad_timestamp_text(store: EventStore, tmp_path: Path) -> None:
    f = tmp_path / "events.parquet"
    stamps = ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "01/03/2024", "2024-01-04"]
    pq.write_table(pa.table({"user_id": ["u"] * 4, "event": ["E"] * 4, "timestamp": stamps}), f)
    with pytest.raises(InputError, match="01/03/2024") as err:
        import_file(store, f, now=NOW)
    assert (err.value.source, err.value.row, err.value.field) == ("events.parquet", 3, "timestamp")
    assert store.count() == 0
