"""Who may enter a journey, and when: trigger matching and entry rules. Pure.

Entry is decided per (journey, customer) from a small ledger the runtime keeps
(:class:`EntryLedger`), in this order — the first rule that refuses names the reason, which is
recorded as an ``entry_refused`` record:

1. ``not_live``       the journey is a draft, paused or archived;
2. ``outside_window`` before the entry window's start or from its end on;
3. ``active``         the customer already has an active instance of this journey (at most one);
4. ``once``           entry policy ``once`` and the customer entered before;
5. ``too_soon``       entry policy ``again_after`` and the last entry is more recent than that;
6. ``throttled``      the journey took ``max_entries_per_hour`` entries in the last hour.

Schedule triggers ("on the birthday at 09:00", "60 days after the last order") have no event to
react to: :func:`next_schedule_time` says when a customer is next due, from their data; the
runtime (or the simulator) sets a timer for it and re-checks when it fires.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from wayline.journeys.localtime import local_instant
from wayline.journeys.matching import Event, PersonFacts, holds, matches_event, person_zone
from wayline.journeys.model import (
    EntryMode,
    EventTrigger,
    Journey,
    ScheduleTrigger,
    SegmentTrigger,
)

SEGMENT_ENTERED = "$segment_entered"
"""The event the segments capability emits when a customer enters a named segment."""


class JourneyStatus(enum.StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    PAUSED = "paused"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class EntryLedger:
    """What entry rules need to know about one customer in one journey."""

    entries: int = 0
    last_entered_at: datetime | None = None
    active_instance_id: str | None = None


@dataclass(frozen=True)
class EntryDecision:
    allowed: bool
    reason: str | None = None


ALLOW = EntryDecision(True)


def triggered_by(journey: Journey, event: Event) -> bool:
    """Whether this event, by itself, triggers an entry (event and named-segment triggers)."""
    trigger = journey.trigger
    if isinstance(trigger, EventTrigger):
        return matches_event(trigger.matcher, event)
    if isinstance(trigger, SegmentTrigger) and trigger.segment is not None:
        return event.name == SEGMENT_ENTERED and event.properties.get("segment") == trigger.segment
    return False


def rule_entered(
    trigger: SegmentTrigger, before: PersonFacts, after: PersonFacts, now: datetime
) -> bool:
    """For an inline segment rule: the rule holds after the customer's latest event, not before."""
    if trigger.rule is None:
        return False
    return holds(trigger.rule, after, now) and not holds(trigger.rule, before, now)


def decide_entry(
    journey: Journey,
    *,
    ledger: EntryLedger,
    now: datetime,
    entries_last_hour: int = 0,
    status: JourneyStatus = JourneyStatus.LIVE,
) -> EntryDecision:
    """May this customer enter now? See the module docstring for the rules and reasons."""
    policy = journey.entry
    if status is not JourneyStatus.LIVE:
        return EntryDecision(False, "not_live")
    if (policy.start is not None and now < policy.start) or (
        policy.end is not None and now >= policy.end
    ):
        return EntryDecision(False, "outside_window")
    if ledger.active_instance_id is not None:
        return EntryDecision(False, "active")
    if ledger.entries and policy.mode is EntryMode.ONCE:
        return EntryDecision(False, "once")
    if (
        policy.mode is EntryMode.AGAIN_AFTER
        and ledger.last_entered_at is not None
        and policy.reentry_after is not None
        and now < ledger.last_entered_at + policy.reentry_after
    ):
        return EntryDecision(False, "too_soon")
    if policy.max_entries_per_hour is not None and entries_last_hour >= policy.max_entries_per_hour:
        return EntryDecision(False, "throttled")
    return ALLOW


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _anniversary(born: date, year: int) -> date:
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a common year: the 28th, as most stores do
        return born.replace(year=year, day=28)


def next_schedule_time(
    journey: Journey,
    trigger: ScheduleTrigger,
    person: PersonFacts,
    *,
    after: datetime,
    last_event_at: datetime | None = None,
) -> datetime | None:
    """The first instant ``> after`` at which a schedule trigger makes this customer due.

    Args:
        after: usually the last time the schedule was checked for this customer.
        last_event_at: for ``after_event`` triggers, when the customer last did that event.
    Returns:
        None when the customer's data gives no date (no birthday, no order yet).
    """
    zone = person_zone(person.traits, journey.timezone)
    if trigger.date_trait is not None:
        born = _as_date(person.traits.get(trigger.date_trait))
        if born is None:
            return None
        local_year = after.astimezone(zone).year
        for year in (local_year - 1, local_year, local_year + 1):
            day = _anniversary(born, year) + trigger.offset
            due = local_instant(day, trigger.at, zone)
            if due > after:
                return due
        return None  # pragma: no cover
    if trigger.after_event is not None and trigger.delay is not None:
        if last_event_at is None:
            return None
        day = (last_event_at + trigger.delay).astimezone(zone).date()
        due = local_instant(day, trigger.at, zone)
        if due < last_event_at + trigger.delay:
            due = local_instant(day + timedelta(days=1), trigger.at, zone)
        return due if due > after else None
    return None


def schedule_key(journey: Journey, person_id: str, due: datetime) -> str:
    """The id of a schedule timer: one per customer and due time, so a repeat is harmless."""
    return f"{journey.id}:{person_id}:schedule:{due.astimezone(UTC).isoformat()}"


def trigger_properties(traits: Mapping[str, Any], trigger: ScheduleTrigger) -> dict[str, Any]:
    """What a schedule entry passes to templates as its 'trigger properties'."""
    if trigger.date_trait is not None:
        return {trigger.date_trait: traits.get(trigger.date_trait)}
    return {}
