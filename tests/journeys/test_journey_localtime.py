"""Local-time rules under random instants and time zones (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from wayline.journeys.localtime import next_local_time, quiet_until

ZONES = st.sampled_from(
    [
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "Pacific/Apia",
    ]
)
INSTANTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
CLOCKS = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(INSTANTS, ZONES, CLOCKS, st.none() | st.sets(st.integers(0, 6), min_size=1))
def test_next_local_time(
    now: datetime, zone_name: str, at: time, weekdays: set[int] | None
) -> None:
    zone = ZoneInfo(zone_name)
    due = next_local_time(now, zone, at, weekdays)
    assert now <= due < now + timedelta(days=8, hours=3)
    local = due.astimezone(zone)
    if weekdays is not None:
        assert local.weekday() in weekdays
    # Equal to the asked wall-clock time, except inside a clock change's gap.
    if local.time().replace(tzinfo=None) != at:
        gap = datetime.combine(local.date(), at, tzinfo=zone)
        assert gap.astimezone(UTC).astimezone(zone).time() != at
    # Nothing earlier qualifies: one minute before is either before now or another clock time.
    earlier = due - timedelta(minutes=1)
    if earlier >= now:
        e = earlier.astimezone(zone)
        assert e.time().replace(tzinfo=None) != at or (
            weekdays is not None and e.weekday() not in weekdays
        )


@given(INSTANTS, ZONES, CLOCKS, CLOCKS)
def test_quiet_hours_end_outside_the_quiet_hours(
    now: datetime, zone_name: str, start: time, end: time
) -> None:
    zone = ZoneInfo(zone_name)
    until = quiet_until(now, zone, start, end)
    if until is None:
        return
    assert now <= until < now + timedelta(days=1, hours=3)
    # The moment the quiet hours end is not quiet any more.
    assert quiet_until(until, zone, start, end) is None
