"""The journey map as data: frozen dataclasses, and their JSON form.

A :class:`JourneyMap` holds one or more :class:`JourneyView` — the whole store, or one view per
persona / segment / device / channel drawn side by side — each with one :class:`StageView` per
stage (what customers do, where, how many enter, move on and drop off, time spent, KPIs, the
owner's notes and the emotion lane), the purchase funnel, the stage-to-stage flows of the Sankey,
and the pain points found in that view with their evidence and solutions.

Every figure is a :class:`Metric`: a value, its unit, and — with ``--compare previous`` — the
value of the previous period of the same length, so that every renderer can show the change.

:func:`to_json` gives the documented JSON form (``docs/journey-map.md``; the JSON Schema is
``journey_map.schema.json`` next to this module). ``SCHEMA_VERSION`` changes when a field's
meaning changes; new fields may be added without a version change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

from wayline.journeymap.stages import StageNotes

SCHEMA_VERSION: Final = 1

Unit = Literal["count", "rate", "money", "seconds", "score"]
Number = int | float | Decimal


@dataclass(frozen=True)
class Metric:
    """A figure and, when the map compares periods, its value in the previous period."""

    value: Number | None
    unit: Unit = "count"
    previous: Number | None = None

    @property
    def change(self) -> Number | None:
        """``value - previous`` (percentage points ×0.01 for rates), None without both."""
        if self.value is None or self.previous is None:
            return None
        if isinstance(self.value, Decimal) or isinstance(self.previous, Decimal):
            return Decimal(self.value) - Decimal(self.previous)
        return self.value - self.previous

    @property
    def change_ratio(self) -> float | None:
        """Relative change ``value / previous - 1``; None when previous is 0 or missing."""
        if self.value is None or self.previous is None or not self.previous:
            return None
        return float(self.value) / float(self.previous) - 1.0


@dataclass(frozen=True)
class Share:
    """One item of a breakdown (an action, a touchpoint, a channel, a device, a drop-off
    point): how many customers and events."""

    name: str
    persons: Metric
    events: Metric
    touchpoint: str | None = None
    """For actions: where the action happens."""


@dataclass(frozen=True)
class Kpi:
    key: str
    """Stable identifier (``conversion_rate``, ``cart_abandonment_rate``,
    ``repeat_purchase_rate``, ``revenue``…): what snapshots and the history are keyed by."""
    label: str
    metric: Metric


@dataclass(frozen=True)
class Emotion:
    """The emotion lane of a stage: a survey score when surveys exist, else empty and said so;
    the owner's own words about how customers feel come from their file."""

    score: float | None = None
    """Mean survey score on a -1 (negative) … +1 (positive) scale."""
    responses: int = 0
    source: str | None = None
    """Where the score comes from (a survey's name), or None."""
    feelings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageView:
    stage: str
    label: str
    entered: Metric
    """Customers with at least one event of this stage (awareness: every active customer)."""
    moved_on: Metric | None
    """Of those, customers who went on to the next stage afterwards (the last stage: None)."""
    dropped: Metric | None
    move_on_rate: Metric | None
    sessions: Metric
    events: Metric
    actions: tuple[Share, ...]
    touchpoints: tuple[Share, ...]
    channels: tuple[Share, ...]
    devices: tuple[Share, ...]
    drop_offs: tuple[Share, ...]
    """The last action in this stage of the customers who did not move on: where they left."""
    median_time_in_stage_seconds: Metric
    median_time_to_next_seconds: Metric | None
    kpis: tuple[Kpi, ...]
    next_goal: str | None
    """What "moving on" means from here, in words."""
    notes: StageNotes = field(default_factory=StageNotes)
    emotion: Emotion = field(default_factory=Emotion)

    def kpi(self, key: str) -> Kpi | None:
        return next((k for k in self.kpis if k.key == key), None)


@dataclass(frozen=True)
class FunnelStepView:
    name: str
    role: str
    events: tuple[str, ...]
    persons: Metric
    conversion: Metric
    """Share of the first step's customers."""
    dropped: Metric


@dataclass(frozen=True)
class Flow:
    """A link of the Sankey: customers going from one node to another (stages, or a stage to
    "dropped off" / "left at <action>")."""

    source: str
    target: str
    persons: int


@dataclass(frozen=True)
class EvidenceView:
    metric: str
    value: float
    baseline: float
    unit: str
    affected_customers: int
    revenue_at_stake: Decimal
    since: datetime
    until: datetime
    segment: dict[str, str]
    detail: str


@dataclass(frozen=True)
class SolutionView:
    key: str
    title: str
    description: str
    channel: str | None = None
    template: str | None = None
    """The journey template file that implements it, where one exists."""
    expected_effect: str | None = None
    effort: str | None = None


@dataclass(frozen=True)
class PainPointView:
    kind: str
    title: str
    stage: str
    step: str | None
    severity: str
    evidence: EvidenceView
    solutions: tuple[SolutionView, ...] = ()


@dataclass(frozen=True)
class UnknownEvent:
    """An event name the mapping does not know, with the stage it was drawn at (a
    suggestion): add it to ``journeymap.yaml`` to place it for good."""

    name: str
    events: int
    suggested_stage: str
    suggested_touchpoint: str


@dataclass(frozen=True)
class JourneyView:
    label: str
    segment: dict[str, str]
    """The filters this view is drawn for (empty: all customers)."""
    persons: Metric
    orders: Metric
    revenue: Metric
    stages: tuple[StageView, ...]
    funnel: tuple[FunnelStepView, ...]
    flows: tuple[Flow, ...]
    pain_points: tuple[PainPointView, ...] = ()

    def stage(self, name: str) -> StageView | None:
        return next((s for s in self.stages if s.stage == name), None)


@dataclass(frozen=True)
class JourneyMap:
    workspace_id: str
    since: datetime
    until: datetime
    generated_at: datetime
    views: tuple[JourneyView, ...]
    unknown_events: tuple[UnknownEvent, ...] = ()
    previous_since: datetime | None = None
    previous_until: datetime | None = None
    emotion_note: str = ""
    mapping_sources: tuple[str, ...] = ()
    pain_points_note: str = ""
    """Why pain points are missing, when they are (e.g. the detectors are not available)."""
    currency: str | None = None
    """The currency of most orders in the period (ISO 4217), for showing money."""

    @property
    def compared(self) -> bool:
        return self.previous_since is not None


# ---------------------------------------------------------------------------------------------
# JSON


def _num(value: Number | None) -> Any:
    # Money is a string in JSON so that no consumer turns cents into a binary fraction.
    if isinstance(value, Decimal):
        return str(value)
    return value


def metric_json(m: Metric | None) -> dict[str, Any] | None:
    if m is None:
        return None
    out: dict[str, Any] = {"value": _num(m.value), "unit": m.unit}
    if m.previous is not None:
        out["previous"] = _num(m.previous)
        out["change"] = _num(m.change)
        out["change_ratio"] = m.change_ratio
    return out


def _share(s: Share) -> dict[str, Any]:
    out = {"name": s.name, "persons": metric_json(s.persons), "events": metric_json(s.events)}
    if s.touchpoint is not None:
        out["touchpoint"] = s.touchpoint
    return out


def _notes(n: StageNotes) -> dict[str, Any]:
    return {
        "label": n.label,
        "goal": n.goal,
        "notes": list(n.notes),
        "thoughts": list(n.thoughts),
        "feelings": list(n.feelings),
        "ideas": list(n.ideas),
    }


def _stage(s: StageView) -> dict[str, Any]:
    return {
        "stage": s.stage,
        "label": s.label,
        "next_goal": s.next_goal,
        "entered": metric_json(s.entered),
        "moved_on": metric_json(s.moved_on),
        "dropped": metric_json(s.dropped),
        "move_on_rate": metric_json(s.move_on_rate),
        "sessions": metric_json(s.sessions),
        "events": metric_json(s.events),
        "median_time_in_stage_seconds": metric_json(s.median_time_in_stage_seconds),
        "median_time_to_next_seconds": metric_json(s.median_time_to_next_seconds),
        "actions": [_share(a) for a in s.actions],
        "touchpoints": [_share(a) for a in s.touchpoints],
        "channels": [_share(a) for a in s.channels],
        "devices": [_share(a) for a in s.devices],
        "drop_offs": [_share(a) for a in s.drop_offs],
        "kpis": [{"key": k.key, "label": k.label, **(metric_json(k.metric) or {})} for k in s.kpis],
        "notes": _notes(s.notes),
        "emotion": {
            "score": s.emotion.score,
            "responses": s.emotion.responses,
            "source": s.emotion.source,
            "feelings": list(s.emotion.feelings),
        },
    }


def pain_point_json(p: PainPointView) -> dict[str, Any]:
    e = p.evidence
    return {
        "kind": p.kind,
        "title": p.title,
        "stage": p.stage,
        "step": p.step,
        "severity": p.severity,
        "evidence": {
            "metric": e.metric,
            "value": e.value,
            "baseline": e.baseline,
            "unit": e.unit,
            "affected_customers": e.affected_customers,
            "revenue_at_stake": str(e.revenue_at_stake),
            "since": e.since.isoformat(),
            "until": e.until.isoformat(),
            "segment": dict(e.segment),
            "detail": e.detail,
        },
        "solutions": [
            {
                "key": s.key,
                "title": s.title,
                "description": s.description,
                "channel": s.channel,
                "template": s.template,
                "expected_effect": s.expected_effect,
                "effort": s.effort,
            }
            for s in p.solutions
        ],
    }


def _view(v: JourneyView) -> dict[str, Any]:
    return {
        "label": v.label,
        "segment": dict(v.segment),
        "persons": metric_json(v.persons),
        "orders": metric_json(v.orders),
        "revenue": metric_json(v.revenue),
        "stages": [_stage(s) for s in v.stages],
        "funnel": [
            {
                "name": f.name,
                "role": f.role,
                "events": list(f.events),
                "persons": metric_json(f.persons),
                "conversion": metric_json(f.conversion),
                "dropped": metric_json(f.dropped),
            }
            for f in v.funnel
        ],
        "flows": [{"source": f.source, "target": f.target, "persons": f.persons} for f in v.flows],
        "pain_points": [pain_point_json(p) for p in v.pain_points],
    }


def to_json(m: JourneyMap) -> dict[str, Any]:
    """The map as JSON-ready data (see ``docs/journey-map.md``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "workspace_id": m.workspace_id,
        "since": m.since.isoformat(),
        "until": m.until.isoformat(),
        "previous_since": m.previous_since.isoformat() if m.previous_since else None,
        "previous_until": m.previous_until.isoformat() if m.previous_until else None,
        "generated_at": m.generated_at.isoformat(),
        "currency": m.currency,
        "mapping_sources": list(m.mapping_sources),
        "emotion_note": m.emotion_note,
        "pain_points_note": m.pain_points_note,
        "views": [_view(v) for v in m.views],
        "unknown_events": [
            {
                "name": u.name,
                "events": u.events,
                "suggested_stage": u.suggested_stage,
                "suggested_touchpoint": u.suggested_touchpoint,
            }
            for u in m.unknown_events
        ],
    }
