"""The SQL that parses timestamps and amounts, checked against Python on generated values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from importer_support import NOW

from wayline.events.importers import import_file
from wayline.events.importers.base import (
    any_timestamp_sql,
    epoch_timestamp_sql,
    lit,
    money_sql,
    text_timestamp_sql,
)
from wayline.storage.eventstore import EventStore

instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
offsets = st.integers(min_value=-14 * 4, max_value=14 * 4).map(
    lambda q: timezone(timedelta(minutes=15 * q))
)


@pytest.fixture(scope="module")
def con() -> Iterator[Any]:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    yield c
    c.close()


def parsed_us(con: Any, sql: str) -> int | None:
    got = con.execute(f"SELECT epoch_us({sql})").fetchone()
    return None if got is None or got[0] is None else int(got[0])


def us(d: datetime) -> int:
    return (d - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@settings(max_examples=60, deadline=None)
@given(instant=instants, offset=offsets, sep=st.sampled_from(["T", " "]))
def test_iso_with_any_offset_is_the_same_instant(
    con: Any, instant: datetime, offset: timezone, sep: str
) -> None:
    text = instant.astimezone(offset).isoformat(sep=sep)
    assert parsed_us(con, text_timestamp_sql(lit(text))) == us(instant)
    assert parsed_us(con, any_timestamp_sql(lit(text))) == us(instant)


@settings(max_examples=60, deadline=None)
@given(instant=instants)
def test_naive_is_utc_and_epochs_agree(con: Any, instant: datetime) -> None:
    naive = instant.replace(tzinfo=None).isoformat()
    seconds = us(instant) // 1_000_000
    whole = us(instant) - us(instant) % 1_000_000
    assert parsed_us(con, text_timestamp_sql(lit(naive))) == us(instant)
    assert parsed_us(con, epoch_timestamp_sql(lit(str(seconds)))) == whole
    assert parsed_us(con, epoch_timestamp_sql(lit(str(us(instant) // 1000)))) == us(instant)
    assert parsed_us(con, epoch_timestamp_sql(lit(str(us(instant))))) == us(instant)
    assert parsed_us(con, any_timestamp_sql(lit(str(seconds)))) == whole


def test_shopify_style_offsets(con: Any) -> None:
    text = "2024-05-01 10:15:32 -0400"
    assert parsed_us(con, text_timestamp_sql(lit(text))) == us(
        datetime(2024, 5, 1, 14, 15, 32, tzinfo=UTC)
    )
    assert parsed_us(con, text_timestamp_sql(lit("next tuesday"))) is None


@settings(max_examples=60, deadline=None)
@given(amount=st.decimals(min_value=-(10**9), max_value=10**9, places=2))
def test_amounts_keep_their_cents(con: Any, amount: Decimal) -> None:
    got = con.execute(f"SELECT {money_sql(lit(str(amount)), strict=True)}").fetchone()
    assert got is not None and got[0] == amount


def test_progress_is_reported(store: EventStore, tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_text("user_id,event,timestamp\nu,E,2024-01-01\n", encoding="utf-8")
    seen: list[tuple[str, float | None]] = []
    import_file(store, f, now=NOW, progress=lambda stage, pct: seen.append((stage, pct)))
    stages = [s for s, _ in seen]
    # A CSV is read while it loads (no staging copy): loading comes first, then the rest.
    assert stages[0] == "loading" and stages[-1] == "committing"
    assert ("loading", 100.0) in seen


def test_utf8_bom_and_crlf(store: EventStore, tmp_path: Path) -> None:
    f = tmp_path / "excel.csv"
    f.write_bytes("\ufeffuser_id,event,timestamp\r\nü,Viewed,2024-01-01\r\n".encode())
    assert import_file(store, f, now=NOW).events_loaded == 1
    got = store.con.execute("SELECT user_id FROM events").fetchone()
    assert got == ("ü",)
