"""A journey as the engine sees it: plain frozen dataclasses, already validated.

:mod:`wayline.journeys.definition` turns a YAML/JSON file into a :class:`Journey`; everything
inside (the engine, the simulator, the runtime) works on these objects only. A journey is

    trigger ──► steps (an explicit graph: each step names the step(s) it leads to) ──► end
                      ▲ the goal event ends it anywhere, counted as a conversion

Steps are named by ``id``; ``next`` (or a branch's ``next``) names the following step, and
``None`` means "the journey is complete for this customer". The first step in the file is
where customers start.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from functools import cached_property
from typing import Any

from wayline.events.engagement import CHANNEL_ACTIONS as _CHANNEL_ACTIONS
from wayline.events.engagement import engagement_event as _engagement_event


class Op(enum.StrEnum):
    """Comparison operators of property filters and trait conditions."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"


@dataclass(frozen=True)
class PropertyFilter:
    """``properties.<property> <op> <value>``; ``property`` may be dotted (``item.sku``)."""

    property: str
    op: Op
    value: Any = None


@dataclass(frozen=True)
class EventMatcher:
    """An event by name with property filters (all must hold)."""

    event: str
    where: tuple[PropertyFilter, ...] = ()


# --- conditions (switch cases, segment rules) ---------------------------------------------


@dataclass(frozen=True)
class TraitCondition:
    """A profile trait compared to a value (``traits.<trait> <op> <value>``)."""

    trait: str
    op: Op
    value: Any = None


@dataclass(frozen=True)
class EventHistoryCondition:
    """The customer did ``event`` (with filters) between ``min_count`` and ``max_count`` times,
    counting only the last ``within`` when given."""

    matcher: EventMatcher
    min_count: int = 1
    max_count: int | None = None
    within: timedelta | None = None


@dataclass(frozen=True)
class SegmentCondition:
    """The customer is (``member=True``) or is not in the named segment."""

    segment: str
    member: bool = True


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


Condition = TraitCondition | EventHistoryCondition | SegmentCondition | AllOf | AnyOf | Not


# --- triggers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventTrigger:
    """Enter when the customer does this event."""

    matcher: EventMatcher


@dataclass(frozen=True)
class SegmentTrigger:
    """Enter when the customer enters a segment.

    ``segment`` names a segment kept by the segments capability, which announces entries as
    ``$segment_entered`` events (``properties.segment`` = the name). ``rule`` is an inline
    segment: the customer enters when, after one of their events, the rule holds and did not
    hold before it.
    """

    segment: str | None = None
    rule: Condition | None = None


@dataclass(frozen=True)
class ScheduleTrigger:
    """Enter at a time computed from the customer's data, at ``at`` in their time zone.

    Exactly one of:
    - ``date_trait``: a date in a profile trait (``birthday``), every year on that day + ``offset``;
    - ``after_event``: ``delay`` after the customer's *last* such event ("60 days after the last
      order"): a newer event of that kind moves the date.
    """

    at: time
    date_trait: str | None = None
    offset: timedelta = timedelta(0)
    after_event: EventMatcher | None = None
    delay: timedelta | None = None


Trigger = EventTrigger | SegmentTrigger | ScheduleTrigger


@dataclass(frozen=True)
class Goal:
    """The event that ends the journey for a customer wherever they are: a conversion.

    ``within`` is how long after entry a goal still counts, and how long a holdout customer is
    watched for it.
    """

    matcher: EventMatcher
    within: timedelta = timedelta(days=7)


class EntryMode(enum.StrEnum):
    ONCE = "once"
    """A customer enters at most once, ever."""
    AGAIN_AFTER = "again_after"
    """A customer may enter again once ``reentry_after`` has passed since their last entry."""


@dataclass(frozen=True)
class EntryPolicy:
    mode: EntryMode = EntryMode.ONCE
    reentry_after: timedelta | None = None
    start: datetime | None = None
    """Entry window: nobody enters before ``start`` or from ``end`` on (UTC)."""
    end: datetime | None = None
    max_entries_per_hour: int | None = None
    """Throttle: entries over this many in the last hour are refused (and recorded)."""


# --- steps -----------------------------------------------------------------------------------


class Channel(enum.StrEnum):
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    SMS = "sms"


#: What each channel reports back about a message (see :mod:`wayline.events.engagement`).
CHANNEL_ACTIONS: Mapping[Channel, tuple[str, ...]] = {
    Channel(name): actions for name, actions in _CHANNEL_ACTIONS.items()
}


def engagement_event(channel: Channel | str, action: str) -> str:
    """The event name of an engagement: ``email`` + ``opened`` → ``email_opened``."""
    return _engagement_event(str(channel), action)


@dataclass(frozen=True)
class SendStep:
    id: str
    channel: Channel
    template: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    next: str | None = None


@dataclass(frozen=True)
class DelayStep:
    id: str
    duration: timedelta
    next: str | None = None


@dataclass(frozen=True)
class WaitUntilStep:
    """Wait until the next ``time`` (of day) on one of ``weekdays`` (0 = Monday), in the
    customer's time zone; either may be absent (any time on those days / that time any day)."""

    id: str
    time: time | None = None
    weekdays: frozenset[int] | None = None
    next: str | None = None


@dataclass(frozen=True)
class MessageEngagement:
    """An engagement with the message a ``send`` step of this journey sent to this customer."""

    send_step: str
    channel: Channel
    action: str

    @property
    def event(self) -> str:
        return engagement_event(self.channel, self.action)


@dataclass(frozen=True)
class WaitBranch:
    name: str
    on: MessageEngagement | EventMatcher
    next: str | None = None


@dataclass(frozen=True)
class WaitForStep:
    """Wait for the first of several events (each its own branch), or the timeout."""

    id: str
    branches: tuple[WaitBranch, ...]
    timeout: timedelta
    on_timeout: str | None = None


@dataclass(frozen=True)
class SwitchCase:
    name: str
    when: Condition
    next: str | None = None


@dataclass(frozen=True)
class SwitchStep:
    """The first case whose condition holds wins; else ``default``."""

    id: str
    cases: tuple[SwitchCase, ...]
    default: str | None = None


@dataclass(frozen=True)
class SplitBranch:
    name: str
    weight: float
    next: str | None = None


@dataclass(frozen=True)
class SplitStep:
    """A random, weighted, sticky split. ``holdout`` is a weight too: the customers it takes
    receive nothing more and are only watched for the goal (for a fair uplift)."""

    id: str
    branches: tuple[SplitBranch, ...]
    holdout: float = 0.0


@dataclass(frozen=True)
class UpdateProfileStep:
    id: str
    set: Mapping[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    next: str | None = None


@dataclass(frozen=True)
class WebhookStep:
    id: str
    url: str
    method: str = "POST"
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    next: str | None = None


@dataclass(frozen=True)
class ExitStep:
    id: str


Step = (
    SendStep
    | DelayStep
    | WaitUntilStep
    | WaitForStep
    | SwitchStep
    | SplitStep
    | UpdateProfileStep
    | WebhookStep
    | ExitStep
)

#: Steps at which a customer stays a while (the engine waits for a timer or an event there).
WAITING_STEPS = (DelayStep, WaitUntilStep, WaitForStep)


def step_type(step: Step) -> str:
    """The step's ``type`` as a journey file writes it (``send``, ``wait_for``…)."""
    return _STEP_TYPES[type(step)]


_STEP_TYPES: dict[type, str] = {
    SendStep: "send",
    DelayStep: "delay",
    WaitUntilStep: "wait_until",
    WaitForStep: "wait_for",
    SwitchStep: "switch",
    SplitStep: "split",
    UpdateProfileStep: "update_profile",
    WebhookStep: "webhook",
    ExitStep: "exit",
}


def successors(step: Step) -> tuple[tuple[str, str | None], ...]:
    """(branch name, target step id or None for "end") of every way out of a step."""
    match step:
        case WaitForStep():
            return (*((b.name, b.next) for b in step.branches), ("timeout", step.on_timeout))
        case SwitchStep():
            return (*((c.name, c.next) for c in step.cases), ("default", step.default))
        case SplitStep():
            return tuple((b.name, b.next) for b in step.branches)
        case ExitStep():
            return ()
        case _:
            return (("next", step.next),)


@dataclass(frozen=True)
class Journey:
    """A validated journey definition; ``version`` is 0 for a draft, 1.. once published."""

    id: str
    name: str
    trigger: Trigger
    steps: tuple[Step, ...]
    goal: Goal | None = None
    entry: EntryPolicy = field(default_factory=EntryPolicy)
    timezone: str = "UTC"
    """The time zone used for customers whose profile names none (or an unknown one)."""
    version: int = 0
    description: str = ""
    _index: Mapping[str, Step] = field(default_factory=dict, compare=False, repr=False)
    _types: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {s.id: s for s in self.steps})
        # Every step record names its step's type: looked up once here, not per record.
        object.__setattr__(self, "_types", {s.id: step_type(s) for s in self.steps})

    @property
    def start(self) -> str | None:
        return self.steps[0].id if self.steps else None

    @cached_property
    def reads_traits(self) -> bool:
        """Whether a step reads the customer's profile: a switch's conditions, or a wait until
        a local time (the customer's time zone). The runtime reads profiles only for those."""
        return any(isinstance(s, SwitchStep | WaitUntilStep) for s in self.steps)

    def step(self, step_id: str) -> Step:
        return self._index[step_id]

    def type_of(self, step_id: str) -> str:
        """The ``type`` of step ``step_id`` (``send``, ``wait_for``…)."""
        return self._types[step_id]

    def has_step(self, step_id: str) -> bool:
        return step_id in self._index


def publish(journey: Journey, version: int) -> Journey:
    """The immutable published version ``version`` (1, 2, …) of a draft.

    Storing versions, and which one is live, is the runtime's job; an instance always runs the
    version it entered (the engine refuses any other).
    """
    if version < 1:
        raise ValueError("published versions are numbered from 1")
    return replace(journey, version=version)
