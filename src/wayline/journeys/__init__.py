"""Automated customer journeys: the definition language, the pure engine, and simulation.

    definition  journey files (YAML/JSON) → validated :class:`Journey` (errors name step and field)
    model       the journey as frozen dataclasses
    engine      (state, input, now) → (new state, effects): pure, no I/O, no clock
    entry       who may enter, and when (entry policy, window, throttle, schedule triggers)
    policies    send-time rules: consent, unsubscribe, frequency cap, quiet hours
    assignment  sticky weighted split / holdout assignment by hash
    simulation  replay of historical events on a virtual clock, through the same engine
    stats       per-step counts, conversions and split results from step records

The durable runtime (SQLite/PostgreSQL, timers and outbox) builds on these and lives apart.
"""

from wayline.journeys.definition import DefinitionError, fingerprint, load_journey, parse_journey
from wayline.journeys.engine import (
    CallWebhook,
    CancelTimer,
    Effect,
    EventInput,
    InstanceState,
    RecordKind,
    ScheduleTimer,
    SendMessage,
    Status,
    StepRecord,
    TimerInput,
    Transition,
    UpdateProfile,
    enter,
    handle,
    instance_id_for,
    to_plain,
)
from wayline.journeys.entry import EntryDecision, EntryLedger, JourneyStatus, decide_entry
from wayline.journeys.matching import Event, PersonFacts, PersonSnapshot
from wayline.journeys.model import Journey, publish
from wayline.journeys.policies import DEFAULT_POLICY, Recipient, SendDecision, SendPolicy
from wayline.journeys.simulation import SeededResponses, SimulationResult, simulate
from wayline.journeys.stats import JourneyStats, compute_stats

__all__ = [
    "DEFAULT_POLICY",
    "CallWebhook",
    "CancelTimer",
    "DefinitionError",
    "Effect",
    "EntryDecision",
    "EntryLedger",
    "Event",
    "EventInput",
    "InstanceState",
    "Journey",
    "JourneyStats",
    "JourneyStatus",
    "PersonFacts",
    "PersonSnapshot",
    "Recipient",
    "RecordKind",
    "ScheduleTimer",
    "SeededResponses",
    "SendDecision",
    "SendMessage",
    "SendPolicy",
    "SimulationResult",
    "Status",
    "StepRecord",
    "TimerInput",
    "Transition",
    "UpdateProfile",
    "compute_stats",
    "decide_entry",
    "enter",
    "fingerprint",
    "handle",
    "instance_id_for",
    "load_journey",
    "parse_journey",
    "publish",
    "simulate",
    "to_plain",
]
