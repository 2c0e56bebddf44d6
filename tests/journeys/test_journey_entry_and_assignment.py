"""Entry rules, schedule triggers, and sticky split assignment."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline.journeys.assignment import HOLDOUT, assign
from wayline.journeys.definition import parse_journey
from wayline.journeys.entry import (
    EntryLedger,
    JourneyStatus,
    decide_entry,
    next_schedule_time,
    triggered_by,
)
from wayline.journeys.localtime import next_local_time
from wayline.journeys.matching import Event, PersonSnapshot
from wayline.journeys.model import EntryMode, EntryPolicy, ScheduleTrigger

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
J = parse_journey(
    {
        "id": "j",
        "name": "J",
        "trigger": {"event": "Viewed", "where": {"sku": {"in": ["a", "b"]}}},
        "steps": [{"id": "s", "type": "send", "channel": "email", "template": "t"}],
    }
)


def test_trigger_filters() -> None:
    assert triggered_by(J, Event("Viewed", "p", T0, {"sku": "a"}))
    assert not triggered_by(J, Event("Viewed", "p", T0, {"sku": "c"}))
    assert not triggered_by(J, Event("Bought", "p", T0, {"sku": "a"}))


@pytest.mark.parametrize(
    ("policy", "ledger", "hour", "status", "reason"),
    [
        (EntryPolicy(), EntryLedger(), 0, JourneyStatus.LIVE, None),
        (EntryPolicy(), EntryLedger(), 0, JourneyStatus.PAUSED, "not_live"),
        (
            EntryPolicy(start=T0 + timedelta(days=1)),
            EntryLedger(),
            0,
            JourneyStatus.LIVE,
            "outside_window",
        ),
        (EntryPolicy(end=T0), EntryLedger(), 0, JourneyStatus.LIVE, "outside_window"),
        (
            EntryPolicy(mode=EntryMode.AGAIN_AFTER, reentry_after=timedelta(days=1)),
            EntryLedger(1, T0 - timedelta(days=2), "j:p:1"),
            0,
            JourneyStatus.LIVE,
            "active",
        ),
        (EntryPolicy(), EntryLedger(1, T0 - timedelta(days=400)), 0, JourneyStatus.LIVE, "once"),
        (
            EntryPolicy(mode=EntryMode.AGAIN_AFTER, reentry_after=timedelta(days=3)),
            EntryLedger(1, T0 - timedelta(days=2)),
            0,
            JourneyStatus.LIVE,
            "too_soon",
        ),
        (
            EntryPolicy(mode=EntryMode.AGAIN_AFTER, reentry_after=timedelta(days=1)),
            EntryLedger(1, T0 - timedelta(days=2)),
            0,
            JourneyStatus.LIVE,
            None,
        ),
        (EntryPolicy(max_entries_per_hour=10), EntryLedger(), 10, JourneyStatus.LIVE, "throttled"),
    ],
)
def test_entry_rules(
    policy: EntryPolicy, ledger: EntryLedger, hour: int, status: JourneyStatus, reason: str | None
) -> None:
    decision = decide_entry(
        replace(J, entry=policy), ledger=ledger, now=T0, entries_last_hour=hour, status=status
    )
    assert decision.allowed is (reason is None)
    assert decision.reason == reason


def test_birthday_schedule_in_local_time() -> None:
    trig = ScheduleTrigger(at=time(9), date_trait="birthday")
    p = PersonSnapshot("p", {"birthday": "1990-03-05", "timezone": "Europe/Paris"})
    due = next_schedule_time(J, trig, p, after=T0)
    assert due == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    assert next_schedule_time(J, trig, p, after=due) == datetime(2027, 3, 5, 8, 0, tzinfo=UTC)
    leap = PersonSnapshot("p", {"birthday": date(2000, 2, 29)})
    assert next_schedule_time(J, trig, leap, after=T0) == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    assert next_schedule_time(J, trig, PersonSnapshot("p"), after=T0) is None
    week_before = replace(trig, offset=-timedelta(days=7))
    assert next_schedule_time(J, week_before, p, after=T0) == datetime(
        2027, 2, 26, 8, 0, tzinfo=UTC
    )


def test_after_last_event_schedule() -> None:
    trig = ScheduleTrigger(at=time(11), after_event=None, delay=timedelta(days=60))
    trig = replace(trig, after_event=J.trigger.matcher)  # type: ignore[union-attr]
    p = PersonSnapshot("p")
    last = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
    due = next_schedule_time(J, trig, p, after=T0 - timedelta(days=60), last_event_at=last)
    assert due == datetime(2026, 3, 12, 11, 0, tzinfo=UTC)  # the 60th day was past 11:00 → next day
    assert next_schedule_time(J, trig, p, after=due, last_event_at=last) is None


def test_next_local_time_across_dst() -> None:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    # Saturday 28 March 2026 10:00 UTC; clocks go forward on Sunday 29 March.
    now = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)
    due = next_local_time(now, paris, time(9), None)
    assert due == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 summer time
    assert next_local_time(now, paris, time(2, 30), {6}).astimezone(paris).hour == 3  # the gap


@given(st.text(min_size=1, max_size=12), st.integers(1, 100), st.integers(1, 100))
def test_assignment_is_sticky(person: str, a: int, b: int) -> None:
    first = assign("j", "split", person, [("a", a), ("b", b)], holdout=10)
    assert first == assign("j", "split", person, [("a", a), ("b", b)], holdout=10)
    # Reweighting the branches never moves anyone into or out of the holdout.
    assert (first == HOLDOUT) == (assign("j", "split", person, [("a", b), ("b", a)], 10) == HOLDOUT)


def test_assignment_follows_the_weights() -> None:
    counts = Counter(
        assign("j", "s", f"p{i}", [("a", 60), ("b", 30)], holdout=10) for i in range(20_000)
    )
    assert abs(counts["a"] / 20_000 - 0.6) < 0.02
    assert abs(counts["b"] / 20_000 - 0.3) < 0.02
    assert abs(counts[HOLDOUT] / 20_000 - 0.1) < 0.015
    other = Counter(assign("j", "s2", f"p{i}", [("a", 60), ("b", 30)], 10) for i in range(20_000))
    assert other != counts  # another split step: an independent draw
