"""Journey files (YAML or JSON) → a validated :class:`~wayline.journeys.model.Journey`.

Two passes, each with errors that say where:

1. Shape, with pydantic models (unknown fields, missing fields, wrong types, bad durations and
   times): ``journey.yaml: steps[3] 'reminder' field 'timeout': '2 hrs later' is not a duration…``.
2. Meaning, on the graph of steps: unknown targets, unreachable steps, cycles that never wait,
   a ``wait_for`` on a message no step before it sends, an action the channel cannot report
   (WhatsApp has no "opened", e-mail has no "read"), split weights, entry rules.

All problems found are reported together (one :class:`DefinitionError`, one line each), so an
author fixes a file in one go. The language itself is documented in ``docs/journey-language.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from wayline.errors import InputError
from wayline.journeys.durations import DURATION_HELP, parse_duration, parse_local_time
from wayline.journeys.model import (
    CHANNEL_ACTIONS,
    WAITING_STEPS,
    AllOf,
    AnyOf,
    Channel,
    Condition,
    DelayStep,
    EntryMode,
    EntryPolicy,
    EventHistoryCondition,
    EventMatcher,
    EventTrigger,
    ExitStep,
    Goal,
    Journey,
    MessageEngagement,
    Not,
    Op,
    PropertyFilter,
    ScheduleTrigger,
    SegmentCondition,
    SegmentTrigger,
    SendStep,
    SplitBranch,
    SplitStep,
    Step,
    SwitchCase,
    SwitchStep,
    TraitCondition,
    Trigger,
    UpdateProfileStep,
    WaitBranch,
    WaitForStep,
    WaitUntilStep,
    WebhookStep,
    successors,
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_WEEKDAYS = {
    name: i
    for i, names in enumerate(
        (
            ("mon", "monday"),
            ("tue", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        )
    )
    for name in names
}


class DefinitionError(InputError):
    """An invalid journey file; ``problems`` lists every problem as (where, message)."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        where, message = self.problems[0]
        super().__init__(message, source=source, field=where or None)

    def __str__(self) -> str:
        lines = [
            f"{self.source}: {where + ': ' if where else ''}{msg}" for where, msg in self.problems
        ]
        return "\n".join(lines)


# --- pass 1: shape ---------------------------------------------------------------------------


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration: {DURATION_HELP}")
    return parse_duration(value)


def _signed_duration(value: Any) -> timedelta:
    if isinstance(value, str) and value.strip().startswith("-"):
        return -_duration(value.strip()[1:])
    return _duration(value)


def _local_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 09:30 as the sexagesimal number 570.
        value = f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time of day: write HH:MM, e.g. '09:30'")
    return parse_local_time(value)


def _weekday(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    if isinstance(value, str) and value.strip().lower() in _WEEKDAYS:
        return _WEEKDAYS[value.strip().lower()]
    raise ValueError(f"{value!r} is not a weekday: write mon, tue, … sun (or 0 = Monday … 6)")


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"{value!r} is not a date-time: write e.g. 2026-03-01T00:00:00Z")
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no time zone: add Z or an offset like +01:00")
    return value.astimezone(UTC)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
SignedDuration = Annotated[timedelta, BeforeValidator(_signed_duration)]
LocalTime = Annotated[time, BeforeValidator(_local_time)]
Weekday = Annotated[int, BeforeValidator(_weekday)]
UtcDateTime = Annotated[datetime, BeforeValidator(_utc)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_OPS = ", ".join(op.value for op in Op)


def _op(name: Any) -> Op:
    try:
        return Op(name)
    except ValueError:
        raise ValueError(f"unknown operator {name!r}: use one of {_OPS}") from None


def _parse_where(value: Any) -> tuple[PropertyFilter, ...]:
    """``{prop: value}``, ``{prop: {op: value}}`` or ``[{property, op, value}]`` → filters."""
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(f, PropertyFilter) for f in value):
        return value
    if isinstance(value, Mapping):
        out = []
        for prop, operand in value.items():
            # {price: {gte: 20}} is the compact form of an operator filter.
            if isinstance(operand, Mapping) and len(operand) == 1:
                (op_name, inner), *_ = operand.items()
                if op_name in Op.__members__.values():
                    out.append(PropertyFilter(str(prop), Op(op_name), inner))
                    continue
            out.append(PropertyFilter(str(prop), Op.EQ, operand))
        return tuple(out)
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping) or not isinstance(item.get("property"), str):
                raise ValueError(f"[{i}] must be a mapping with 'property', 'op' and 'value'")
            extra = set(item) - {"property", "op", "value"}
            if extra:
                raise ValueError(f"[{i}] unknown field(s) {', '.join(sorted(extra))}")
            out.append(
                PropertyFilter(item["property"], _op(item.get("op", "eq")), item.get("value"))
            )
        return tuple(out)
    raise ValueError("'where' is a mapping {property: value} or a list of {property, op, value}")


Where = Annotated[tuple[PropertyFilter, ...], BeforeValidator(_parse_where)]


class TraitModel(_Model):
    trait: Name
    op: Op = Op.EQ
    value: Any = None


class EventHistoryModel(_Model):
    event: Name
    where: Where = ()
    min_count: int = Field(default=1, ge=0)
    max_count: int | None = Field(default=None, ge=0)
    within: Duration | None = None


class SegmentModel(_Model):
    segment: Name
    member: bool = True


class AllModel(_Model):
    all: list[ConditionModel] = Field(min_length=1)


class AnyModel(_Model):
    any: list[ConditionModel] = Field(min_length=1)


class NotModel(_Model):
    not_: ConditionModel = Field(alias="not")


_CONDITION_TAGS = ("trait", "event", "segment", "all", "any", "not")


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True)
    if not isinstance(value, Mapping):
        return None
    for key in _CONDITION_TAGS:
        if key in value:
            return key
    return None


ConditionModel = Annotated[
    Annotated[TraitModel, Tag("trait")]
    | Annotated[EventHistoryModel, Tag("event")]
    | Annotated[SegmentModel, Tag("segment")]
    | Annotated[AllModel, Tag("all")]
    | Annotated[AnyModel, Tag("any")]
    | Annotated[NotModel, Tag("not")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message="a condition has one of: trait, event, segment, all, any, not",
    ),
]


class ScheduleModel(_Model):
    at: LocalTime = time(9, 0)
    date_trait: Name | None = None
    offset: SignedDuration = timedelta(0)
    after_event: Name | None = None
    where: Where = ()
    delay: Duration | None = None


class TriggerModel(_Model):
    event: Name | None = None
    where: Where = ()
    segment: Name | None = None
    segment_rule: ConditionModel | None = None
    schedule: ScheduleModel | None = None


class GoalModel(_Model):
    event: Name
    where: Where = ()
    within: Duration = timedelta(days=7)


class WindowModel(_Model):
    start: UtcDateTime | None = None
    end: UtcDateTime | None = None


class ThrottleModel(_Model):
    max_per_hour: int = Field(ge=1)


class EntryModel(_Model):
    policy: EntryMode = EntryMode.ONCE
    again_after: Duration | None = None
    window: WindowModel = WindowModel()
    throttle: ThrottleModel | None = None


class _StepModel(_Model):
    id: Name
    description: str = ""


class SendModel(_StepModel):
    type: Literal["send"]
    channel: Channel
    template: Name
    variables: dict[str, Any] = Field(default_factory=dict)
    next: str | None = None


class DelayModel(_StepModel):
    type: Literal["delay"]
    duration: Duration
    next: str | None = None


class WaitUntilModel(_StepModel):
    type: Literal["wait_until"]
    time: LocalTime | None = None
    weekdays: list[Weekday] | None = Field(default=None, min_length=1)
    next: str | None = None


class WaitBranchModel(_Model):
    name: Name | None = None
    message: Name | None = None
    """The id of the send step whose message this waits on."""
    action: Name | None = None
    event: Name | None = None
    where: Where = ()
    next: str | None = None


class WaitForModel(_StepModel):
    type: Literal["wait_for"]
    branches: list[WaitBranchModel] = Field(min_length=1)
    timeout: Duration
    on_timeout: str | None = None


class CaseModel(_Model):
    name: Name | None = None
    when: ConditionModel
    next: str | None = None


class SwitchModel(_StepModel):
    type: Literal["switch"]
    cases: list[CaseModel] = Field(min_length=1)
    default: str | None = None


class SplitBranchModel(_Model):
    name: Name
    weight: float = Field(gt=0)
    next: str | None = None


class SplitModel(_StepModel):
    type: Literal["split"]
    branches: list[SplitBranchModel] = Field(min_length=1)
    holdout: float = Field(default=0.0, ge=0)


class UpdateProfileModel(_StepModel):
    type: Literal["update_profile"]
    set: dict[str, Any] = Field(default_factory=dict)
    unset: list[Name] = Field(default_factory=list)
    next: str | None = None


class WebhookModel(_StepModel):
    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    body: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    next: str | None = None


class ExitModel(_StepModel):
    type: Literal["exit"]


StepModel = Annotated[
    SendModel
    | DelayModel
    | WaitUntilModel
    | WaitForModel
    | SwitchModel
    | SplitModel
    | UpdateProfileModel
    | WebhookModel
    | ExitModel,
    Field(discriminator="type"),
]


class JourneyModel(_Model):
    id: Name
    name: Name
    description: str = ""
    timezone: str = "UTC"
    trigger: TriggerModel
    goal: GoalModel | None = None
    entry: EntryModel = EntryModel()
    steps: list[StepModel] = Field(min_length=1)


AllModel.model_rebuild()
AnyModel.model_rebuild()
NotModel.model_rebuild()

STEP_TYPES = ("send", "delay", "wait_until", "wait_for", "switch", "split", "update_profile",
              "webhook", "exit")  # fmt: skip


# --- locating problems -----------------------------------------------------------------------


def _step_label(raw: Any, index: int) -> str:
    steps = raw.get("steps") if isinstance(raw, Mapping) else None
    step_id = None
    if isinstance(steps, list) and index < len(steps) and isinstance(steps[index], Mapping):
        step_id = steps[index].get("id")
    return f"steps[{index}] '{step_id}'" if step_id else f"steps[{index}]"


def _where(loc: Sequence[str | int], raw: Any) -> str:
    """A pydantic location → ``steps[3] 'reminder' field 'timeout'``."""
    parts = list(loc)
    head = ""
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int):
        head = _step_label(raw, parts[1])
        parts = parts[2:]
        if parts and parts[0] in STEP_TYPES:
            parts = parts[1:]  # the discriminator's tag, not a field
    # The tag pydantic adds after a condition union (``when.trait.value``) is noise too.
    kept: list[str | int] = []
    opens_union = False  # the previous part holds a condition, so this one is its tag
    for p in parts:
        if opens_union and p in _CONDITION_TAGS:
            opens_union = False
            continue
        kept.append(p)
        opens_union = p in ("when", "segment_rule", "not") or (
            isinstance(p, int) and len(kept) >= 2 and kept[-2] in ("all", "any")
        )
    parts = kept
    field = ""
    for p in parts:
        field += f"[{p}]" if isinstance(p, int) else (f".{p}" if field else str(p))
    if head and field:
        return f"{head} field '{field}'"
    if field:
        return f"field '{field}'"
    return head


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return "unknown field (check its spelling and the step type)"
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        return f"unknown step type {tag!r}: use one of {', '.join(STEP_TYPES)}"
    if kind == "union_tag_not_found":
        return f"a step needs a 'type': one of {', '.join(STEP_TYPES)}"
    return msg.removeprefix("Value error, ")


# --- pass 2: meaning -------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, message: str) -> None:
        self.items.append((where, message))


def _condition(model: Any) -> Condition:
    match model:
        case TraitModel():
            return TraitCondition(model.trait, model.op, model.value)
        case EventHistoryModel():
            return EventHistoryCondition(
                EventMatcher(model.event, model.where),
                model.min_count,
                model.max_count,
                model.within,
            )
        case SegmentModel():
            return SegmentCondition(model.segment, model.member)
        case AllModel():
            return AllOf(tuple(_condition(c) for c in model.all))
        case AnyModel():
            return AnyOf(tuple(_condition(c) for c in model.any))
        case NotModel():
            return Not(_condition(model.not_))
    raise TypeError(f"unknown condition {model!r}")  # pragma: no cover


def _check_ops(filters: Sequence[PropertyFilter], where: str, problems: _Problems) -> None:
    for f in filters:
        if f.op in (Op.IN, Op.NOT_IN) and not isinstance(f.value, list):
            problems.add(where, f"filter on {f.property!r}: '{f.op}' needs a list of values")


def _trigger(model: TriggerModel, problems: _Problems) -> Trigger | None:
    kinds = [k for k in ("event", "segment", "segment_rule", "schedule") if getattr(model, k)]
    if len(kinds) != 1:
        problems.add(
            "field 'trigger'",
            "a trigger has exactly one of: event, segment, segment_rule, schedule"
            + (f" (found {', '.join(kinds)})" if kinds else ""),
        )
        return None
    if model.where and not model.event:
        problems.add("field 'trigger.where'", "'where' filters an event trigger only")
    if model.event:
        filters = model.where
        _check_ops(filters, "field 'trigger.where'", problems)
        return EventTrigger(EventMatcher(model.event, filters))
    if model.segment:
        return SegmentTrigger(segment=model.segment)
    if model.segment_rule is not None:
        return SegmentTrigger(rule=_condition(model.segment_rule))
    sched = model.schedule
    assert sched is not None
    if (sched.date_trait is None) == (sched.after_event is None):
        problems.add(
            "field 'trigger.schedule'", "a schedule has exactly one of: date_trait, after_event"
        )
        return None
    if sched.after_event is not None and sched.delay is None:
        problems.add("field 'trigger.schedule.delay'", "after_event needs a delay, e.g. 60d")
        return None
    return ScheduleTrigger(
        at=sched.at,
        date_trait=sched.date_trait,
        offset=sched.offset,
        after_event=None
        if sched.after_event is None
        else EventMatcher(sched.after_event, sched.where),
        delay=sched.delay,
    )


def _entry(model: EntryModel, problems: _Problems) -> EntryPolicy:
    if model.policy is EntryMode.AGAIN_AFTER and model.again_after is None:
        problems.add("field 'entry.again_after'", "policy again_after needs how long, e.g. 30d")
    if model.policy is EntryMode.ONCE and model.again_after is not None:
        problems.add("field 'entry.again_after'", "only meaningful with policy: again_after")
    w = model.window
    if w.start and w.end and w.end <= w.start:
        problems.add("field 'entry.window.end'", "the entry window ends before it starts")
    return EntryPolicy(
        mode=model.policy,
        reentry_after=model.again_after,
        start=w.start,
        end=w.end,
        max_entries_per_hour=model.throttle.max_per_hour if model.throttle else None,
    )


def _step(model: Any, label: str, sends: Mapping[str, Channel], problems: _Problems) -> Step:
    match model:
        case SendModel():
            return SendStep(model.id, model.channel, model.template, model.variables, model.next)
        case DelayModel():
            return DelayStep(model.id, model.duration, model.next)
        case WaitUntilModel():
            if model.time is None and model.weekdays is None:
                problems.add(label, "wait_until needs a time, weekdays, or both")
            weekdays = frozenset(model.weekdays) if model.weekdays is not None else None
            return WaitUntilStep(model.id, model.time, weekdays, model.next)
        case WaitForModel():
            branches = []
            for i, b in enumerate(model.branches):
                where = f"{label} field 'branches[{i}]'"
                if (b.message is None) == (b.event is None):
                    problems.add(
                        where, "a branch waits on either a message (and action) or an event"
                    )
                    continue
                if b.message is not None:
                    if b.message not in sends:
                        problems.add(
                            where, f"'message' must name a send step; {b.message!r} is not one"
                        )
                        continue
                    channel = sends[b.message]
                    actions = CHANNEL_ACTIONS[channel]
                    if b.action not in actions:
                        problems.add(
                            where,
                            f"{channel} messages report {', '.join(actions)}; not {b.action!r}",
                        )
                        continue
                    if b.where:
                        problems.add(where, "'where' filters an event branch only")
                    on: MessageEngagement | EventMatcher = MessageEngagement(
                        b.message, channel, b.action
                    )
                    name = b.name or b.action
                else:
                    assert b.event is not None
                    if b.action is not None:
                        problems.add(where, "'action' goes with 'message', not with 'event'")
                    filters = b.where
                    _check_ops(filters, where, problems)
                    on = EventMatcher(b.event, filters)
                    name = b.name or b.event
                branches.append(WaitBranch(name, on, b.next))
            names = [b.name for b in branches]
            if len(set(names)) != len(names) or "timeout" in names:
                problems.add(label, "wait_for branch names must be unique and not 'timeout'")
            return WaitForStep(model.id, tuple(branches), model.timeout, model.on_timeout)
        case SwitchModel():
            cases = tuple(
                SwitchCase(c.name or f"case_{i + 1}", _condition(c.when), c.next)
                for i, c in enumerate(model.cases)
            )
            names = [c.name for c in cases]
            if len(set(names)) != len(names) or "default" in names:
                problems.add(label, "switch case names must be unique and not 'default'")
            return SwitchStep(model.id, cases, model.default)
        case SplitModel():
            names = [b.name for b in model.branches]
            if len(set(names)) != len(names) or "holdout" in names:
                problems.add(label, "split branch names must be unique and not 'holdout'")
            return SplitStep(
                model.id,
                tuple(SplitBranch(b.name, b.weight, b.next) for b in model.branches),
                model.holdout,
            )
        case UpdateProfileModel():
            if not model.set and not model.unset:
                problems.add(label, "update_profile needs 'set' or 'unset'")
            return UpdateProfileStep(model.id, model.set, tuple(model.unset), model.next)
        case WebhookModel():
            return WebhookStep(
                model.id, model.url, model.method, model.body, model.headers, model.next
            )
        case ExitModel():
            return ExitStep(model.id)
    raise TypeError(f"unknown step {model!r}")  # pragma: no cover


def _check_graph(steps: Sequence[Step], labels: Mapping[str, str], problems: _Problems) -> None:
    index = {s.id: s for s in steps}
    edges: dict[str, list[str]] = {}
    for step in steps:
        targets = []
        for branch, target in successors(step):
            if target is None:
                continue
            if target not in index:
                field = "next" if branch == "next" else f"branch {branch!r}"
                problems.add(labels[step.id], f"{field} goes to unknown step {target!r}")
            else:
                targets.append(target)
        edges[step.id] = targets
    # Reachability from the first step.
    seen = {steps[0].id}
    stack = [steps[0].id]
    while stack:
        for target in edges[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    for step in steps:
        if step.id not in seen:
            problems.add(labels[step.id], "unreachable: no step leads here")
    # A cycle among steps that never wait would run forever in one instant.
    instant = {s.id for s in steps if not isinstance(s, WAITING_STEPS)}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in edges[node]:
            if target not in instant:
                continue
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [target]
                problems.add(
                    labels[target],
                    "cycle without a delay or wait: " + " → ".join(cycle),
                )
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in instant:
        if node not in state:
            visit(node, [node])
    # A wait on a message must come after a step that sends it.
    for step in steps:
        if not isinstance(step, WaitForStep):
            continue
        for wb in step.branches:
            if isinstance(wb.on, MessageEngagement) and not _leads_to(
                edges, wb.on.send_step, step.id
            ):
                problems.add(
                    labels[step.id],
                    f"branch {wb.name!r} waits on the message of step "
                    f"{wb.on.send_step!r}, which never comes before this step",
                )


def _leads_to(edges: Mapping[str, Sequence[str]], start: str, goal: str) -> bool:
    seen = {start}
    stack = list(edges.get(start, ()))
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(edges.get(node, ()))
    return False


def parse_journey(data: Any, *, source: str = "<journey>") -> Journey:
    """A decoded journey document (a dict) → a validated draft :class:`Journey`.

    Raises:
        DefinitionError: with every problem found, each located by step and field.
    """
    if not isinstance(data, Mapping):
        raise DefinitionError(
            source, [("", "a journey is a mapping with id, name, trigger, steps")]
        )
    try:
        model = JourneyModel.model_validate(data)
    except ValidationError as exc:
        found = [(_where(e["loc"], data), _message(e)) for e in exc.errors()]
        raise DefinitionError(source, found) from None
    problems = _Problems()
    if not _ID.match(model.id):
        problems.add("field 'id'", "use letters, digits, '-', '_' or '.' (e.g. skincare-offer)")
    try:
        ZoneInfo(model.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(
            "field 'timezone'",
            f"unknown time zone {model.timezone!r} (IANA name, e.g. Europe/Paris)",
        )
    trigger = _trigger(model.trigger, problems)
    entry = _entry(model.entry, problems)
    labels: dict[str, str] = {}
    for i, s in enumerate(model.steps):
        label = f"steps[{i}] '{s.id}'"
        if not _ID.match(s.id):
            problems.add(f"{label} field 'id'", "use letters, digits, '-', '_' or '.'")
        if s.id in labels:
            problems.add(f"{label} field 'id'", f"duplicate step id (also {labels[s.id]})")
        labels.setdefault(s.id, label)
    sends = {s.id: s.channel for s in model.steps if isinstance(s, SendModel)}
    steps = tuple(_step(s, labels[s.id], sends, problems) for s in model.steps)
    if not problems.items:
        _check_graph(steps, labels, problems)
    goal = None
    if model.goal is not None:
        filters = model.goal.where
        _check_ops(filters, "field 'goal.where'", problems)
        goal = Goal(EventMatcher(model.goal.event, filters), model.goal.within)
    if problems.items or trigger is None:
        raise DefinitionError(source, problems.items or [("field 'trigger'", "invalid")])
    return Journey(
        id=model.id,
        name=model.name,
        description=model.description,
        trigger=trigger,
        steps=steps,
        goal=goal,
        entry=entry,
        timezone=model.timezone,
    )


def fingerprint(data: Mapping[str, Any]) -> str:
    """A stable hash of a journey document: equal for equal content, whatever the key order or
    file format, so a runtime can tell whether an edited draft differs from the live version."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_journey(path: Path | str) -> Journey:
    """Read and validate a journey file (``.yaml``/``.yml`` or ``.json``)."""
    path = Path(path)
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read the journey file: {exc.strerror}", source=str(path)
        ) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(
            f"not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {exc}", source=source
        ) from None
    return parse_journey(data, source=source)
