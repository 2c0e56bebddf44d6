"""Matching events and customers against a journey's filters and conditions. Pure.

What the engine knows about a customer comes in a :class:`PersonFacts` — their traits, the
segments they are in, and a way to count their past events. The runtime backs it with queries;
the simulator and the tests with :class:`PersonSnapshot`, which holds the events in memory.
Either way, the engine only reads it.

Comparisons: numbers (and numeric strings when compared with a number) compare as ``Decimal``
so ``"19.90" gt 10`` holds and money never goes through float; everything else compares as
is. A missing property matches only ``ne``, ``not_in`` and ``not_exists``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from wayline.journeys.model import (
    AllOf,
    AnyOf,
    Condition,
    EventHistoryCondition,
    EventMatcher,
    Not,
    Op,
    PropertyFilter,
    SegmentCondition,
    TraitCondition,
)

_MISSING = object()


@dataclass(frozen=True)
class Event:
    """An event as the engine consumes it: the parts of an event row it needs."""

    name: str
    person_id: str
    timestamp: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Event:
        """From an event row (:mod:`wayline.events.schema`): JSON text properties are parsed,
        a naive or ISO-text timestamp is read as UTC."""
        props = row.get("properties") or {}
        if isinstance(props, str | bytes):
            props = orjson.loads(props) or {}
        ts = row["timestamp"]
        if isinstance(ts, str):
            ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        if ts.tzinfo is None:  # event rows are UTC (wayline.events.schema)
            ts = ts.replace(tzinfo=UTC)
        return cls(name=str(row["event"]), person_id=str(row["person_id"]), timestamp=ts,
                   properties=props)  # fmt: skip


class PersonFacts(Protocol):
    """What the engine may read about a customer when it decides (a read-only view)."""

    @property
    def person_id(self) -> str: ...

    @property
    def traits(self) -> Mapping[str, Any]: ...

    @property
    def segments(self) -> frozenset[str]: ...

    def count_events(self, matcher: EventMatcher, since: datetime | None, until: datetime) -> int:
        """How many events matching ``matcher`` the customer did in ``[since, until]``."""
        ...


@dataclass(frozen=True)
class PersonSnapshot:
    """:class:`PersonFacts` held in memory: traits, segments and the event history."""

    person_id: str
    traits: Mapping[str, Any] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()
    history: Sequence[Event] = ()

    def count_events(self, matcher: EventMatcher, since: datetime | None, until: datetime) -> int:
        return sum(
            1
            for e in self.history
            if (since is None or e.timestamp >= since)
            and e.timestamp <= until
            and matches_event(matcher, e)
        )


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """``data[a][b]`` for the dotted path ``a.b``; ``_MISSING`` where there is no such key."""
    value: Any = data
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, int | float | Decimal) or isinstance(right, int | float | Decimal):
        a, b = _number(left), _number(right)
        if a is not None and b is not None:
            return a == b
    return bool(left == right)


def _order(left: Any, right: Any) -> int | None:
    """-1/0/1 comparing ``left`` to ``right``, or None when they cannot be ordered."""
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    return None


def compare(actual: Any, op: Op, expected: Any) -> bool:
    """Whether ``actual <op> expected`` holds (``actual`` may be the missing marker)."""
    missing = actual is _MISSING or actual is None
    if op is Op.EXISTS:
        return not missing
    if op is Op.NOT_EXISTS:
        return missing
    if op is Op.NE:
        return missing or not _equal(actual, expected)
    if op is Op.NOT_IN:
        return missing or not any(_equal(actual, v) for v in expected)
    if missing:
        return False
    if op is Op.EQ:
        return _equal(actual, expected)
    if op is Op.IN:
        return any(_equal(actual, v) for v in expected)
    if op is Op.CONTAINS:
        if isinstance(actual, str):
            return isinstance(expected, str) and expected.lower() in actual.lower()
        if isinstance(actual, list | tuple):
            return any(_equal(item, expected) for item in actual)
        return False
    order = _order(actual, expected)
    if order is None:
        return False
    return {Op.GT: order > 0, Op.GTE: order >= 0, Op.LT: order < 0, Op.LTE: order <= 0}[op]


def matches_filters(filters: Sequence[PropertyFilter], properties: Mapping[str, Any]) -> bool:
    return all(compare(lookup(properties, f.property), f.op, f.value) for f in filters)


def matches_event(matcher: EventMatcher, event: Event) -> bool:
    return event.name == matcher.event and matches_filters(matcher.where, event.properties)


def holds(condition: Condition, person: PersonFacts, now: datetime) -> bool:
    """Whether a switch case / segment rule holds for the customer at ``now``."""
    match condition:
        case TraitCondition():
            return compare(lookup(person.traits, condition.trait), condition.op, condition.value)
        case SegmentCondition():
            return (condition.segment in person.segments) == condition.member
        case EventHistoryCondition():
            since = now - condition.within if condition.within is not None else None
            count = person.count_events(condition.matcher, since, now)
            upper = condition.max_count is None or count <= condition.max_count
            return count >= condition.min_count and upper
        case AllOf():
            return all(holds(c, person, now) for c in condition.conditions)
        case AnyOf():
            return any(holds(c, person, now) for c in condition.conditions)
        case Not():
            return not holds(condition.condition, person, now)
    raise TypeError(f"unknown condition {condition!r}")  # pragma: no cover


def person_zone(traits: Mapping[str, Any], default: str) -> ZoneInfo:
    """The customer's time zone: the IANA name in trait ``timezone``, else ``default``."""
    for name in (traits.get("timezone"), default, "UTC"):
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")  # pragma: no cover
