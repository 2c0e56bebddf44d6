"""Replay a store's past events through a journey on a virtual clock.

The simulator is a small in-memory runtime around the very same pure engine
(:mod:`wayline.journeys.engine`): it merges the historical events, in time order, with the
timers the engine asks for, and moves a virtual clock from one to the next — a month of history
replays in seconds. It answers "had this journey been live from *since* to *until*, how many
customers would have entered, reached each step, been sent each message, and converted?".

A replay of history has a gap: the journey's own messages were never sent, so nobody opened or
read them, and a journey that branches on opens would go nowhere. A **response model** fills it:
for every message that would have been sent, it says which engagement events follow and when
(``email_opened`` after 2 hours…), and those synthetic events are fed back in like any other,
with ``message_id``, ``journey`` and ``step`` properties. :class:`SeededResponses` (the default)
draws them from per-channel rates, deterministically: the draw for a message and an action is a
hash of (seed, message id, action), so a replay is reproducible and changing one rate does not
reshuffle the others. Each action in a channel's funnel happens only if the one before did
(an e-mail is clicked only if opened).

Purchases and the other real events are replayed as they happened: conversions in a simulation
are "would have converted while in the journey", not an uplift (for that, use a holdout live).

Events before *since* only build up customers' profiles and histories (so switch conditions and
"60 days after the last order" work from the first day); only events in ``[since, until)``
trigger entries. Timers due at the same instant as an event fire first.

Send-time policies apply as live (consent, unsubscribe, frequency cap, quiet hours). Histories
rarely hold consent records, so by default a customer with no recorded consent for a channel is
assumed to have given it (``assume_consent``); an explicit ``false`` is respected.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from wayline.journeys.assignment import unit_point
from wayline.journeys.engine import (
    CallWebhook,
    Effect,
    EventInput,
    InstanceState,
    RecordKind,
    ScheduleTimer,
    SendMessage,
    StepRecord,
    TimerInput,
    Transition,
    UpdateProfile,
    enter,
    handle,
    instance_id_for,
)
from wayline.journeys.entry import (
    SEGMENT_ENTERED,
    EntryLedger,
    decide_entry,
    next_schedule_time,
    triggered_by,
)
from wayline.journeys.matching import Event, PersonSnapshot, holds, matches_event
from wayline.journeys.model import (
    Journey,
    ScheduleTrigger,
    SegmentTrigger,
    engagement_event,
)
from wayline.journeys.policies import (
    DEFAULT_POLICY,
    Recipient,
    SendContext,
    SendPolicy,
    Verdict,
    delivery_record,
)
from wayline.journeys.stats import JourneyStats, compute_stats

SEGMENT_EXITED = "$segment_exited"


# --- response model --------------------------------------------------------------------------


class ResponseModel(Protocol):
    """Which engagement events follow a message that was sent, and how long after."""

    def responses(self, send: SendMessage) -> Sequence[tuple[str, timedelta]]:
        """(action, delay after the send) pairs, e.g. ``[("delivered", 1m), ("opened", 2h)]``."""
        ...


@dataclass(frozen=True)
class FunnelStep:
    action: str
    rate: float
    """Probability, given that the previous action in the funnel happened."""
    after: timedelta
    """Delay after the previous action."""


DEFAULT_FUNNELS: Mapping[str, tuple[FunnelStep, ...]] = {
    "email": (
        FunnelStep("delivered", 0.98, timedelta(minutes=1)),
        FunnelStep("opened", 0.40, timedelta(hours=2)),
        FunnelStep("clicked", 0.25, timedelta(minutes=5)),
    ),
    "whatsapp": (
        FunnelStep("delivered", 0.97, timedelta(minutes=1)),
        FunnelStep("read", 0.75, timedelta(minutes=30)),
        FunnelStep("replied", 0.10, timedelta(minutes=10)),
    ),
    "sms": (
        FunnelStep("delivered", 0.97, timedelta(minutes=1)),
        FunnelStep("clicked", 0.08, timedelta(minutes=20)),
    ),
}
"""Typical rates for store messages; override per channel and action with ``rates``."""


@dataclass(frozen=True)
class SeededResponses:
    """Deterministic-by-seed engagement: see the module docstring.

    ``rates`` overrides the default rates, keyed ``"<channel>.<action>"`` (``"email.opened"``).
    """

    seed: int = 0
    rates: Mapping[str, float] = field(default_factory=dict)
    funnels: Mapping[str, tuple[FunnelStep, ...]] = field(default_factory=lambda: DEFAULT_FUNNELS)

    def responses(self, send: SendMessage) -> Sequence[tuple[str, timedelta]]:
        out: list[tuple[str, timedelta]] = []
        delay = timedelta(0)
        for step in self.funnels.get(send.channel, ()):
            rate = self.rates.get(f"{send.channel}.{step.action}", step.rate)
            if unit_point(str(self.seed), send.message_id, step.action) >= rate:
                break
            delay += step.after
            out.append((step.action, delay))
        return out


@dataclass(frozen=True)
class NoResponses:
    """Nobody engages with anything: every wait on a message times out."""

    def responses(self, send: SendMessage) -> Sequence[tuple[str, timedelta]]:
        return ()


# --- the replay ------------------------------------------------------------------------------


@dataclass
class _Person:
    person_id: str
    traits: dict[str, Any] = field(default_factory=dict)
    segments: set[str] = field(default_factory=set)
    history: list[Event] = field(default_factory=list)
    sends: list[datetime] = field(default_factory=list)
    entries: int = 0
    last_entered_at: datetime | None = None
    instance: InstanceState | None = None
    last_trigger_event_at: datetime | None = None
    schedule_due: datetime | None = None

    def facts(self) -> PersonSnapshot:
        return PersonSnapshot(self.person_id, self.traits, frozenset(self.segments), self.history)


@dataclass(frozen=True)
class SimulatedSend:
    message_id: str
    person_id: str
    step_id: str
    channel: str
    template: str
    at: datetime


@dataclass(frozen=True)
class SimulationResult:
    journey_id: str
    since: datetime
    until: datetime
    events_read: int
    records: tuple[StepRecord, ...]
    sends: tuple[SimulatedSend, ...]
    webhooks: tuple[CallWebhook, ...]
    profile_updates: tuple[UpdateProfile, ...]
    timers_fired: int
    stats: JourneyStats


class Simulator:
    """One replay of one journey. Feed events in time order with :meth:`feed`, then
    :meth:`finish`; or call :func:`simulate`."""

    def __init__(
        self,
        journey: Journey,
        *,
        since: datetime,
        until: datetime,
        responses: ResponseModel | None = None,
        policy: SendPolicy = DEFAULT_POLICY,
        assume_consent: bool = True,
    ) -> None:
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("since and until must be timezone-aware")
        self.journey = journey
        self.since = since.astimezone(UTC)
        self.until = until.astimezone(UTC)
        self.responses: ResponseModel = responses or SeededResponses()
        self.policy = policy
        self.assume_consent = assume_consent
        self.people: dict[str, _Person] = {}
        self.records: list[StepRecord] = []
        self.sends: list[SimulatedSend] = []
        self.webhooks: list[CallWebhook] = []
        self.updates: list[UpdateProfile] = []
        self.timers_fired = 0
        self.events_read = 0
        self.now = self.since
        self._queue: list[tuple[datetime, int, str, Any]] = []
        self._seq = itertools.count()
        self._recent_entries: deque[datetime] = deque()
        self._last_row_at: datetime | None = None

    # -- driving the clock --

    def feed(self, row: Mapping[str, Any]) -> None:
        """One historical event row (:mod:`wayline.events.schema` shape), in time order."""
        event = Event.from_row(row)
        at = event.timestamp.astimezone(UTC)
        if self._last_row_at is not None and at < self._last_row_at:
            raise ValueError("events must be fed in time order")
        self._last_row_at = at
        if at >= self.until:
            return
        self.events_read += 1
        self._run_queue(through=at)
        self.now = max(self.now, at)
        traits = row.get("traits")
        if isinstance(traits, str | bytes):
            traits = orjson.loads(traits)
        self._on_event(event, at, traits if isinstance(traits, Mapping) else None)

    def finish(self) -> SimulationResult:
        """Run the remaining timers up to ``until`` and report."""
        self._run_queue(through=self.until, inclusive=False)
        records = tuple(self.records)
        return SimulationResult(
            journey_id=self.journey.id,
            since=self.since,
            until=self.until,
            events_read=self.events_read,
            records=records,
            sends=tuple(self.sends),
            webhooks=tuple(self.webhooks),
            profile_updates=tuple(self.updates),
            timers_fired=self.timers_fired,
            stats=compute_stats(self.journey, records),
        )

    def _push(self, at: datetime, kind: str, payload: Any) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), kind, payload))

    def _run_queue(self, *, through: datetime, inclusive: bool = True) -> None:
        queue = self._queue
        while queue and (queue[0][0] <= through if inclusive else queue[0][0] < through):
            at, _, kind, payload = heapq.heappop(queue)
            if at >= self.until:
                continue
            self.now = max(self.now, at)
            if kind == "timer":
                self._on_timer(*payload)
            elif kind == "event":
                self._on_event(payload, at, None)
            elif kind == "send":
                self._deliver(payload, at)
            elif kind == "schedule":
                self._on_schedule(*payload)

    # -- what happens at each kind of instant --

    def _person(self, person_id: str) -> _Person:
        person = self.people.get(person_id)
        if person is None:
            person = self.people[person_id] = _Person(person_id)
        return person

    def _on_event(self, event: Event, at: datetime, traits: Mapping[str, Any] | None) -> None:
        person = self._person(event.person_id)
        trigger = self.journey.trigger
        # An inline segment rule triggers on the edge: it did not hold before this event.
        rule = trigger.rule if isinstance(trigger, SegmentTrigger) else None
        held_before = rule is not None and holds(rule, person.facts(), at)
        if traits:
            person.traits.update(traits)
        if event.name == SEGMENT_ENTERED and isinstance(event.properties.get("segment"), str):
            person.segments.add(event.properties["segment"])
        elif event.name == SEGMENT_EXITED:
            person.segments.discard(str(event.properties.get("segment")))
        person.history.append(event)
        if (
            isinstance(trigger, ScheduleTrigger)
            and trigger.after_event is not None
            and matches_event(trigger.after_event, event)
        ):
            person.last_trigger_event_at = at
        if at < self.since:  # warm-up: history only
            self._reschedule(person, at)
            return
        if person.instance is not None:
            self._apply(
                person,
                handle(
                    self.journey, person.instance, EventInput(event), person=person.facts(), now=at
                ),
                at,
            )
        entering = triggered_by(self.journey, event) or (
            rule is not None and not held_before and holds(rule, person.facts(), at)
        )
        if entering:
            self._try_entry(person, at, event)
        self._reschedule(person, at)

    def _on_timer(self, person_id: str, timer_id: str) -> None:
        person = self.people[person_id]
        instance = person.instance
        if instance is None or instance.waiting is None or instance.waiting.timer_id != timer_id:
            return  # stale: the instance moved on (the engine would ignore it too)
        self.timers_fired += 1
        self._apply(
            person,
            handle(
                self.journey, instance, TimerInput(timer_id), person=person.facts(), now=self.now
            ),
            self.now,
        )

    def _on_schedule(self, person_id: str, due: datetime) -> None:
        person = self.people[person_id]
        if person.schedule_due != due:
            return  # superseded (a newer order moved the date)
        person.schedule_due = None
        if self.since <= due:
            self._try_entry(person, due, None)
        self._reschedule(person, due)

    def _reschedule(self, person: _Person, at: datetime) -> None:
        trigger = self.journey.trigger
        if not isinstance(trigger, ScheduleTrigger):
            return
        due = next_schedule_time(
            self.journey,
            trigger,
            person.facts(),
            after=at,
            last_event_at=person.last_trigger_event_at,
        )
        if due == person.schedule_due:
            return
        # Always remember the newest due time, so that a superseded one in the queue is ignored.
        person.schedule_due = due
        if due is not None and due < self.until:
            self._push(due, "schedule", (person.person_id, due))

    def _try_entry(self, person: _Person, at: datetime, trigger: Event | None) -> None:
        recent = self._recent_entries
        while recent and recent[0] <= at - timedelta(hours=1):
            recent.popleft()
        ledger = EntryLedger(
            entries=person.entries,
            last_entered_at=person.last_entered_at,
            active_instance_id=person.instance.instance_id if person.instance else None,
        )
        decision = decide_entry(self.journey, ledger=ledger, now=at, entries_last_hour=len(recent))
        if not decision.allowed:
            self.records.append(
                StepRecord(
                    RecordKind.ENTRY_REFUSED, "", self.journey.id, self.journey.version,
                    person.person_id, at, outcome=decision.reason,
                )
            )  # fmt: skip
            return
        person.entries += 1
        person.last_entered_at = at
        recent.append(at)
        instance_id = instance_id_for(self.journey.id, person.person_id, person.entries)
        self._apply(
            person,
            enter(
                self.journey,
                instance_id=instance_id,
                person=person.facts(),
                now=at,
                trigger=trigger,
            ),
            at,
        )

    def _apply(self, person: _Person, transition: Transition, at: datetime) -> None:
        state = transition.state
        person.instance = state if state.active else None
        for effect in transition.effects:
            self._effect(person, effect, at)

    def _effect(self, person: _Person, effect: Effect, at: datetime) -> None:
        match effect:
            case StepRecord():
                self.records.append(effect)
            case ScheduleTimer():
                self._push(effect.due_at, "timer", (person.person_id, effect.timer_id))
            case SendMessage():
                self._deliver(effect, at)
            case UpdateProfile():
                self.updates.append(effect)
                person.traits.update(effect.set)
                for key in effect.unset:
                    person.traits.pop(key, None)
            case CallWebhook():
                self.webhooks.append(effect)
            case _:
                pass  # CancelTimer: the queue drops stale timers by itself

    def _deliver(self, send: SendMessage, at: datetime) -> None:
        person = self.people[send.person_id]
        instance = person.instance
        ended = instance is None or instance.instance_id != send.instance_id
        if ended and at > send.at:
            # Deferred past the end of the instance (it converted overnight): not sent.
            self.records.append(
                StepRecord(
                    RecordKind.SEND_SKIPPED, send.instance_id, send.journey_id, send.version,
                    send.person_id, at, send.step_id, "send", "journey_ended", send.channel,
                )
            )  # fmt: skip
            return
        traits: Mapping[str, Any] = person.traits
        if self.assume_consent:
            given = traits.get("consents")
            consents = {c: True for c in ("email", "whatsapp", "sms")}
            if isinstance(given, Mapping):
                consents.update(given)
            traits = {**traits, "consents": consents}
        recipient = Recipient.from_traits(
            person.person_id,
            traits,
            recent_sends=person.sends,
            default_timezone=self.journey.timezone,
        )
        decision = self.policy.evaluate(SendContext(send.channel, recipient, at))
        self.records.append(delivery_record(send, decision, at))
        if decision.verdict is Verdict.DEFER:
            assert decision.send_at is not None
            self._push(decision.send_at, "send", send)
            return
        if decision.verdict is Verdict.SKIP:
            return
        person.sends.append(at)
        self.sends.append(
            SimulatedSend(send.message_id, send.person_id, send.step_id, send.channel,
                          send.template, at)
        )  # fmt: skip
        for action, delay in self.responses.responses(send):
            engagement = Event(
                name=engagement_event(send.channel, action),
                person_id=send.person_id,
                timestamp=at + delay,
                properties={
                    "message_id": send.message_id,
                    "journey": send.journey_id,
                    "step": send.step_id,
                },
            )
            self._push(engagement.timestamp, "event", engagement)


def simulate(
    journey: Journey,
    rows: Iterable[Mapping[str, Any]],
    *,
    since: datetime,
    until: datetime,
    responses: ResponseModel | None = None,
    policy: SendPolicy = DEFAULT_POLICY,
    assume_consent: bool = True,
) -> SimulationResult:
    """Replay event rows (sorted by timestamp) through a journey; see the module docstring."""
    sim = Simulator(
        journey,
        since=since,
        until=until,
        responses=responses,
        policy=policy,
        assume_consent=assume_consent,
    )
    for row in rows:
        sim.feed(row)
    return sim.finish()


HISTORY_LOOKBACK = timedelta(days=400)
"""How far before ``since`` events are read to build up profiles and histories."""


def read_events(
    con: Any,
    *,
    since: datetime,
    until: datetime,
    workspace_id: str | None = None,
    lookback: timedelta = HISTORY_LOOKBACK,
    batch_size: int = 10_000,
) -> Iterator[dict[str, Any]]:
    """Event rows from a DuckDB ``events`` table (``EventStore.con``), in time order, from
    ``since - lookback`` to ``until``, fetched in batches."""
    sql = (
        "SELECT event, person_id, timestamp, properties, traits FROM events "
        "WHERE timestamp >= ? AND timestamp < ?"
        + (" AND workspace_id = ?" if workspace_id is not None else "")
        + " ORDER BY timestamp, message_id"
    )
    params: list[Any] = [since - lookback, until]
    if workspace_id is not None:
        params.append(workspace_id)
    cursor = con.execute(sql, params)
    columns = ("event", "person_id", "timestamp", "properties", "traits")
    while batch := cursor.fetchmany(batch_size):
        for values in batch:
            row = dict(zip(columns, values, strict=True))
            ts = row["timestamp"]
            if isinstance(ts, datetime) and ts.tzinfo is None:
                row["timestamp"] = ts.replace(tzinfo=UTC)
            yield row
