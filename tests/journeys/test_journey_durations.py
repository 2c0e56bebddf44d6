from __future__ import annotations

from datetime import time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline.journeys.durations import format_duration, parse_duration, parse_local_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("2 hours", timedelta(hours=2)),
        ("1 day", timedelta(days=1)),
        ("90 minutes", timedelta(minutes=90)),
        ("2 days 3 hours", timedelta(days=2, hours=3)),
        ("1 week and 2 days", timedelta(days=9)),
        ("2 hrs, 5 mins", timedelta(hours=2, minutes=5)),
        ("P2D", timedelta(days=2)),
        ("PT2H", timedelta(hours=2)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("P1W", timedelta(weeks=1)),
        ("pt30m", timedelta(minutes=30)),
    ],
)
def test_documented_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2",
        "2 months",
        "P1M",
        "P1Y",
        "0h",
        "PT",
        "P",
        "2 days fish",
        "-2h",
        "2x",
        "h2",
        "2 hrs later",
    ],
)
def test_refused_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|zero"):
        parse_duration(text)


@given(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)))
def test_format_parse_round_trip(value: timedelta) -> None:
    value = timedelta(seconds=int(value.total_seconds()) or 1)
    assert parse_duration(format_duration(value)) == value


def test_local_time() -> None:
    assert parse_local_time("09:30") == time(9, 30)
    assert parse_local_time("9:05") == time(9, 5)
    for bad in ("24:00", "9", "09:60", "nine"):
        with pytest.raises(ValueError, match="time of day"):
            parse_local_time(bad)
