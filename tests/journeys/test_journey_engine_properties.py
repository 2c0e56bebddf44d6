"""The engine under random journeys, events and timers (a Hypothesis rule-based state machine).

A tiny in-test runtime applies :func:`enter`/:func:`handle` to random valid journeys, fires due
timers on a virtual clock (and, on purpose, fires some of them again), and checks:

- at most one active instance per customer and journey;
- the goal always exits: after a goal event no instance of that customer is active;
- no step is skipped or repeated: each instance's path starts at the first step and follows the
  graph's edges, every step left was reached just before, and (the graphs are acyclic) no step
  is reached twice;
- the holdout receives nothing: no send, webhook or profile update after a holdout assignment;
- every due timer fires once: no active instance ever waits on a timer that is due, a current
  timer moves its instance exactly once, and a repeated timer is a no-op;
- ended instances never change.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from wayline.journeys.definition import parse_journey
from wayline.journeys.engine import (
    CallWebhook,
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
from wayline.journeys.entry import EntryLedger, decide_entry, triggered_by
from wayline.journeys.matching import Event, PersonSnapshot
from wayline.journeys.model import Journey, successors

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PEOPLE = ("p0", "p1", "p2")
EVENTS = ("T", "T", "G", "A", "B")  # trigger (twice as likely), goal, two others
DURATIONS = ("30m", "2h", "1d", "3d")
TYPES = (
    "send",
    "send",
    "delay",
    "wait_until",
    "wait_for",
    "switch",
    "split",
    "split",
    "update_profile",
    "webhook",
)


@st.composite
def journeys(draw: st.DrawFn) -> Journey:
    """A random valid journey: a spine 0 → 1 → … → n-1 plus random forward branches."""
    n = draw(st.integers(1, 7))
    ids = [f"s{i}" for i in range(n)]

    def forward(i: int) -> str | None:
        return draw(st.sampled_from([*ids[i + 1 :], None]))

    steps: list[dict[str, Any]] = []
    sends: list[tuple[str, str]] = []
    for i, sid in enumerate(ids):
        nxt = ids[i + 1] if i + 1 < n else None
        kind = (
            draw(st.sampled_from(TYPES))
            if nxt or i == 0
            else draw(st.sampled_from([*TYPES, "exit"]))
        )
        step: dict[str, Any] = {"id": sid, "type": kind}
        if kind == "send":
            channel = draw(st.sampled_from(["email", "whatsapp"]))
            step |= {"channel": channel, "template": "t", "next": nxt}
            sends.append((sid, channel))
        elif kind == "delay":
            step |= {"duration": draw(st.sampled_from(DURATIONS)), "next": nxt}
        elif kind == "wait_until":
            step |= {"time": draw(st.sampled_from(["09:00", "18:30"])), "next": nxt}
            if draw(st.booleans()):
                step["weekdays"] = draw(
                    st.lists(st.sampled_from(["mon", "wed", "sat"]), min_size=1, unique=True)
                )
        elif kind == "wait_for":
            branches: list[dict[str, Any]] = [{"name": "a", "event": "A", "where": {}, "next": nxt}]
            if sends and draw(st.booleans()):
                send_id, channel = draw(st.sampled_from(sends))
                action = "opened" if channel == "email" else "read"
                branches.append(
                    {"name": "engaged", "message": send_id, "action": action, "next": forward(i)}
                )
            step |= {
                "timeout": draw(st.sampled_from(DURATIONS)),
                "branches": branches,
                "on_timeout": forward(i),
            }
        elif kind == "switch":
            step |= {
                "cases": [
                    {"name": "did_b", "when": {"event": "B"}, "next": forward(i)},
                    {"name": "vip", "when": {"trait": "vip", "value": True}, "next": forward(i)},
                ],
                "default": nxt,
            }
        elif kind == "split":
            step |= {
                "branches": [
                    {"name": "x", "weight": 1, "next": nxt},
                    {"name": "y", "weight": draw(st.integers(1, 3)), "next": forward(i)},
                ],
                "holdout": draw(st.sampled_from([0, 1, 2, 3])),
            }
        elif kind == "update_profile":
            step |= {"set": {"vip": True}, "next": nxt}
        elif kind == "webhook":
            step |= {"url": "https://example.com/h", "next": nxt}
        steps.append(step)
    doc: dict[str, Any] = {"id": "prop", "name": "P", "trigger": {"event": "T"}, "steps": steps}
    if draw(st.booleans()):
        doc["goal"] = {"event": "G", "within": draw(st.sampled_from(["1d", "5d"]))}
    if draw(st.booleans()):
        doc["entry"] = {"policy": "again_after", "again_after": "1h"}
    return parse_journey(doc)


class EngineMachine(RuleBasedStateMachine):
    @initialize(journey=journeys())
    def setup(self, journey: Journey) -> None:
        self.journey = journey
        self.now = T0
        self.instances: dict[str, InstanceState] = {}  # instance id → latest state
        self.current: dict[str, str] = {}  # person → active instance id
        self.entries: dict[str, int] = defaultdict(int)
        self.last_entered: dict[str, datetime] = {}
        self.history: dict[str, list[Event]] = defaultdict(list)
        self.traits: dict[str, dict[str, Any]] = defaultdict(dict)
        self.timers: list[tuple[datetime, str, str]] = []  # (due, timer id, instance id)
        self.fired: list[tuple[str, str]] = []  # (timer id, instance id) already fired
        self.path: dict[str, list[str]] = defaultdict(list)
        self.left: dict[str, list[str]] = defaultdict(list)
        self.messages: dict[str, list[SendMessage]] = defaultdict(list)
        self.holdout_leaks: list[Any] = []
        self.effective_fires: dict[str, int] = defaultdict(int)

    def facts(self, person: str) -> PersonSnapshot:
        return PersonSnapshot(person, self.traits[person], frozenset(), self.history[person])

    def apply(self, instance_id: str, before: InstanceState | None, t: Transition) -> None:
        if before is not None and not before.active:
            assert t == Transition(before), "an ended instance changed"
        self.instances[instance_id] = t.state
        person = t.state.person_id
        if t.state.active:
            self.current[person] = instance_id
        elif self.current.get(person) == instance_id:
            del self.current[person]
        held = before is not None and before.in_holdout
        for effect in t.effects:
            if isinstance(effect, SendMessage | CallWebhook | UpdateProfile) and held:
                self.holdout_leaks.append(effect)
            if isinstance(effect, StepRecord):
                if effect.kind is RecordKind.REACHED:
                    self.path[instance_id].append(effect.step_id or "")
                elif effect.kind is RecordKind.LEFT:
                    assert self.path[instance_id][-1] == effect.step_id, "left a step not reached"
                    self.left[instance_id].append(effect.step_id or "")
                    if effect.branch == "holdout":
                        held = True
            elif isinstance(effect, ScheduleTimer):
                assert effect.due_at >= self.now
                self.timers.append((effect.due_at, effect.timer_id, instance_id))
            elif isinstance(effect, SendMessage):
                self.messages[person].append(effect)
            elif isinstance(effect, UpdateProfile):
                self.traits[person].update(effect.set)

    def deliver(self, event: Event) -> None:
        person = event.person_id
        self.history[person].append(event)
        active = self.current.get(person)
        if active is not None:
            before = self.instances[active]
            self.apply(
                active,
                before,
                handle(
                    self.journey, before, EventInput(event), person=self.facts(person), now=self.now
                ),
            )
        if event.name == "G" and self.journey.goal is not None:
            assert person not in self.current, "the goal did not end the journey"
        if triggered_by(self.journey, event):
            ledger = EntryLedger(
                self.entries[person], self.last_entered.get(person), self.current.get(person)
            )
            if decide_entry(self.journey, ledger=ledger, now=self.now).allowed:
                self.entries[person] += 1
                self.last_entered[person] = self.now
                iid = instance_id_for(self.journey.id, person, self.entries[person])
                assert iid not in self.instances
                self.apply(
                    iid,
                    None,
                    enter(
                        self.journey,
                        instance_id=iid,
                        person=self.facts(person),
                        now=self.now,
                        trigger=event,
                    ),
                )

    @rule(person=st.sampled_from(PEOPLE), name=st.sampled_from(EVENTS))
    def event(self, person: str, name: str) -> None:
        self.deliver(Event(name, person, self.now))

    @rule(person=st.sampled_from(PEOPLE), data=st.data())
    def engage(self, person: str, data: st.DataObject) -> None:
        sent = self.messages[person]
        if not sent:
            return
        message = data.draw(st.sampled_from(sent))
        action = "opened" if message.channel == "email" else "read"
        self.deliver(
            Event(
                f"{message.channel}_{action}",
                person,
                self.now,
                {"message_id": message.message_id, "journey": message.journey_id},
            )
        )

    @rule(minutes=st.integers(1, 6 * 24 * 60))
    def advance(self, minutes: int) -> None:
        target = self.now + timedelta(minutes=minutes)
        while True:
            due = sorted(t for t in self.timers if t[0] <= target)
            if not due:
                break
            when, timer_id, iid = due[0]
            self.timers.remove(due[0])
            self.now = max(self.now, when)
            before = self.instances[iid]
            t = handle(
                self.journey,
                before,
                TimerInput(timer_id),
                person=self.facts(before.person_id),
                now=self.now,
            )
            current = (
                before.waiting is not None and before.waiting.timer_id == timer_id and before.active
            )
            assert (t != Transition(before)) == current, "a current timer must move its instance"
            if current:
                self.effective_fires[timer_id] += 1
            self.apply(iid, before, t)
            self.fired.append((timer_id, iid))
            # The same timer delivered again at once, even as late as the next wait's due time.
            after = t.state
            late = max(self.now, after.waiting.due_at) if after.waiting else self.now
            dup = handle(
                self.journey,
                after,
                TimerInput(timer_id),
                person=self.facts(after.person_id),
                now=late,
            )
            assert dup == Transition(after), "a repeated timer moved the instance"
        self.now = target

    @rule(data=st.data(), late=st.booleans())
    def refire(self, data: st.DataObject, late: bool) -> None:
        """A timer delivered again — possibly late, when the instance's newer wait is due too."""
        if not self.fired:
            return
        timer_id, iid = data.draw(st.sampled_from(self.fired))
        before = self.instances[iid]
        now = self.now
        if late and before.waiting is not None:
            now = max(now, before.waiting.due_at)
        again = handle(
            self.journey, before, TimerInput(timer_id), person=self.facts(before.person_id), now=now
        )
        assert again == Transition(before), "a timer fired twice moved the instance"

    @invariant()
    def one_active_instance_per_customer(self) -> None:
        if not hasattr(self, "journey"):
            return
        active = [s.person_id for s in self.instances.values() if s.active]
        assert len(active) == len(set(active))

    @invariant()
    def paths_follow_the_graph(self) -> None:
        if not hasattr(self, "journey"):
            return
        for iid, path in self.path.items():
            assert path[0] == self.journey.start
            assert len(path) == len(set(path)), f"a step repeated in {path}"
            for a, b in itertools.pairwise(path):
                targets = {t for _, t in successors(self.journey.step(a))}
                assert b in targets, f"{a} → {b} is not an edge"
            left = self.left[iid]
            assert left == path[: len(left)]
            assert len(path) - len(left) <= 1  # at most the step it waits at is not left yet

    @invariant()
    def holdout_receives_nothing(self) -> None:
        if hasattr(self, "journey"):
            assert not self.holdout_leaks

    @invariant()
    def no_due_timer_is_left_unfired(self) -> None:
        if not hasattr(self, "journey"):
            return
        for state in self.instances.values():
            if state.active:
                assert state.waiting is not None, "an active instance must wait on something"
                assert state.waiting.due_at > self.now or any(
                    t[1] == state.waiting.timer_id for t in self.timers
                )
                if state.waiting.due_at <= self.now:
                    raise AssertionError("a due timer was not fired")
        assert all(n == 1 for n in self.effective_fires.values())


EngineMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEngineMachine = pytest.mark.slow(EngineMachine.TestCase)
