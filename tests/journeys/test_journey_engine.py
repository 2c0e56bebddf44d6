"""The pure engine, one rule at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wayline.journeys.definition import parse_journey
from wayline.journeys.engine import (
    CallWebhook,
    CancelTimer,
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
    WaitKind,
    enter,
    handle,
    to_plain,
)
from wayline.journeys.matching import Event, PersonSnapshot
from wayline.journeys.model import Journey

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def journey(steps: list[dict[str, Any]], **extra: Any) -> Journey:
    return parse_journey(
        {"id": "j", "name": "J", "trigger": {"event": "T"}, "steps": steps, **extra}
    )


def person(pid: str = "p", **traits: Any) -> PersonSnapshot:
    return PersonSnapshot(pid, traits)


def ev(name: str, at: datetime, pid: str = "p", **props: Any) -> EventInput:
    return EventInput(Event(name, pid, at, props))


def of(t: Transition, kind: type) -> list[Any]:
    return [e for e in t.effects if isinstance(e, kind)]


def records(t: Transition, kind: RecordKind) -> list[StepRecord]:
    return [e for e in of(t, StepRecord) if e.kind is kind]


def start(j: Journey, p: PersonSnapshot | None = None, at: datetime = T0) -> Transition:
    return enter(j, instance_id="j:p:1", person=p or person(), now=at, trigger=Event("T", "p", at))


SEND = {"type": "send", "channel": "email", "template": "t"}


def test_instant_steps_run_until_a_wait() -> None:
    j = journey(
        [
            {"id": "a", **SEND, "next": "b"},
            {"id": "b", "type": "delay", "duration": "2h", "next": "c"},
            {"id": "c", **SEND},
        ]
    )
    t = start(j)
    assert [s.step_id for s in of(t, SendMessage)] == ["a"]
    (timer,) = of(t, ScheduleTimer)
    assert timer.due_at == T0 + timedelta(hours=2)
    assert t.state.waiting is not None and t.state.waiting.step_id == "b"
    assert [r.step_id for r in records(t, RecordKind.REACHED)] == ["a", "b"]

    early = handle(
        j, t.state, TimerInput(timer.timer_id), person=person(), now=T0 + timedelta(hours=1)
    )
    assert early == Transition(t.state)  # not due yet: nothing happens
    later = handle(j, t.state, TimerInput(timer.timer_id), person=person(), now=timer.due_at)
    assert [s.step_id for s in of(later, SendMessage)] == ["c"]
    assert later.state.status is Status.COMPLETED  # no goal: done at the end of the path
    again = handle(j, later.state, TimerInput(timer.timer_id), person=person(), now=timer.due_at)
    assert again == Transition(later.state)  # a timer firing twice is a no-op


def test_idempotency_keys_and_message_ids() -> None:
    j = journey([{"id": "a", **SEND}])
    (send,) = of(start(j), SendMessage)
    assert send.idempotency_key == "j:p:1/a/1"
    assert (
        send.message_id.startswith("m_")
        and send.message_id == of(start(j), SendMessage)[0].message_id
    )
    assert send.trigger == {"event": "T", "properties": {}}


def test_goal_ends_the_journey_wherever_the_customer_is() -> None:
    j = journey(
        [
            {"id": "a", **SEND, "next": "b"},
            {"id": "b", "type": "delay", "duration": "3d", "next": "c"},
            {"id": "c", **SEND},
        ],
        goal={"event": "Order Completed", "where": {"total": {"gte": 10}}},
    )
    t = start(j)
    small = handle(
        j, t.state, ev("Order Completed", T0 + timedelta(hours=1), total=5), person=person(), now=T0
    )
    assert small.state == t.state  # filter not met
    bought = handle(
        j,
        t.state,
        ev("Order Completed", T0 + timedelta(hours=1), total="19.90"),
        person=person(),
        now=T0 + timedelta(hours=1),
    )
    assert bought.state.status is Status.CONVERTED
    assert bought.state.waiting is None
    assert of(bought, CancelTimer)[0].timer_id == t.state.waiting.timer_id  # type: ignore[union-attr]
    (conv,) = records(bought, RecordKind.CONVERTED)
    assert conv.step_id == "b"
    # Nothing moves a converted instance: neither its old timer nor more events.
    assert handle(
        j,
        bought.state,
        TimerInput(t.state.waiting.timer_id),
        person=person(),  # type: ignore[union-attr]
        now=T0 + timedelta(days=5),
    ) == Transition(bought.state)


def test_after_the_last_step_the_customer_is_watched_for_the_goal_window() -> None:
    j = journey([{"id": "a", **SEND}], goal={"event": "Buy", "within": "7d"})
    t = start(j)
    assert t.state.active and t.state.waiting is not None
    assert t.state.waiting.kind is WaitKind.GOAL_WINDOW
    assert t.state.waiting.due_at == T0 + timedelta(days=7)
    done = handle(
        j,
        t.state,
        TimerInput(t.state.waiting.timer_id),
        person=person(),
        now=T0 + timedelta(days=7),
    )
    assert done.state.status is Status.COMPLETED
    assert records(done, RecordKind.COMPLETED)[0].outcome == "goal_window"


def wait_journey() -> Journey:
    return journey(
        [
            {"id": "mail", **SEND, "next": "w"},
            {
                "id": "w",
                "type": "wait_for",
                "timeout": "2d",
                "on_timeout": "late",
                "branches": [
                    {"message": "mail", "action": "clicked", "next": "clicked"},
                    {
                        "name": "visit",
                        "event": "Page Viewed",
                        "where": {"path": "/sale"},
                        "next": "visited",
                    },
                ],
            },
            {"id": "clicked", "type": "update_profile", "set": {"clicked": True}},
            {"id": "visited", "type": "webhook", "url": "https://example.com/hook"},
            {"id": "late", **SEND},
        ]
    )


def test_wait_for_takes_the_branch_of_the_event() -> None:
    j = wait_journey()
    t = start(j)
    (mail,) = of(t, SendMessage)
    other = handle(
        j,
        t.state,
        ev("email_clicked", T0 + timedelta(hours=1), message_id="m_other"),
        person=person(),
        now=T0 + timedelta(hours=1),
    )
    assert other.state.waiting == t.state.waiting
    hit = handle(
        j,
        t.state,
        ev("email_clicked", T0 + timedelta(hours=1), message_id=mail.message_id),
        person=person(),
        now=T0 + timedelta(hours=1),
    )
    assert of(hit, UpdateProfile)[0].set == {"clicked": True}
    assert records(hit, RecordKind.LEFT)[0].branch == "clicked"
    visit = handle(
        j,
        t.state,
        ev("Page Viewed", T0 + timedelta(hours=1), path="/sale"),
        person=person(),
        now=T0 + timedelta(hours=1),
    )
    assert of(visit, CallWebhook)[0].url == "https://example.com/hook"
    late_event = handle(
        j,
        t.state,
        ev("Page Viewed", T0 + timedelta(days=3), path="/sale"),
        person=person(),
        now=T0 + timedelta(days=3),
    )
    assert late_event.state == t.state  # after the deadline: the timeout wins
    timeout = handle(
        j,
        t.state,
        TimerInput(t.state.waiting.timer_id),
        person=person(),  # type: ignore[union-attr]
        now=T0 + timedelta(days=2),
    )
    assert [s.step_id for s in of(timeout, SendMessage)] == ["late"]
    assert records(timeout, RecordKind.LEFT)[0].branch == "timeout"


def test_an_engagement_before_the_wait_counts_at_the_wait() -> None:
    j = journey(
        [
            {"id": "mail", **SEND, "next": "d"},
            {"id": "d", "type": "delay", "duration": "1h", "next": "w"},
            {
                "id": "w",
                "type": "wait_for",
                "timeout": "1d",
                "branches": [{"message": "mail", "action": "opened", "next": "yes"}],
            },
            {"id": "yes", **SEND},
        ]
    )
    t = start(j)
    mail = of(t, SendMessage)[0]
    opened = handle(
        j,
        t.state,
        ev("email_opened", T0 + timedelta(minutes=5), message_id=mail.message_id),
        person=person(),
        now=T0 + timedelta(minutes=5),
    )
    assert opened.state.engaged == {f"{mail.message_id}/opened"}
    fired = handle(
        j,
        opened.state,
        TimerInput(opened.state.waiting.timer_id),
        person=person(),  # type: ignore[union-attr]
        now=T0 + timedelta(hours=1),
    )
    assert [s.step_id for s in of(fired, SendMessage)] == ["yes"]


def test_switch_first_match_wins_and_sees_profile_updates() -> None:
    j = journey(
        [
            {"id": "tag", "type": "update_profile", "set": {"tier": "gold"}, "next": "sw"},
            {
                "id": "sw",
                "type": "switch",
                "default": "c",
                "cases": [
                    {"name": "vip", "when": {"segment": "vip"}, "next": "a"},
                    {"name": "gold", "when": {"trait": "tier", "value": "gold"}, "next": "b"},
                    {"name": "gold_too", "when": {"trait": "tier", "op": "exists"}, "next": "a"},
                ],
            },
            {"id": "a", **SEND},
            {"id": "b", **SEND},
            {"id": "c", **SEND},
        ]
    )
    t = start(j)
    assert [s.step_id for s in of(t, SendMessage)] == ["b"]
    vip = start(j, PersonSnapshot("p", {}, frozenset({"vip"})))
    assert [s.step_id for s in of(vip, SendMessage)] == ["a"]


def test_holdout_receives_nothing_and_is_watched_for_the_goal() -> None:
    j = journey(
        [
            {
                "id": "split",
                "type": "split",
                "holdout": 50,
                "branches": [{"name": "go", "weight": 50, "next": "a"}],
            },
            {"id": "a", **SEND},
        ],
        goal={"event": "Buy", "within": "5d"},
    )
    outcomes = {}
    for i in range(200):
        t = enter(j, instance_id=f"j:{i}:1", person=person(f"p{i}"), now=T0)
        outcomes[f"p{i}"] = t
    held = [t for t in outcomes.values() if t.state.in_holdout]
    treated = [t for t in outcomes.values() if not t.state.in_holdout]
    assert 60 < len(held) < 140
    assert all(not of(t, SendMessage) for t in held)
    assert all(len(of(t, SendMessage)) == 1 for t in treated)
    t = held[0]
    assert t.state.waiting is not None and t.state.waiting.kind is WaitKind.HOLDOUT
    bought = handle(
        j,
        t.state,
        EventInput(Event("Buy", t.state.person_id, T0 + timedelta(days=1))),
        person=person(t.state.person_id),
        now=T0 + timedelta(days=1),
    )
    assert bought.state.status is Status.CONVERTED
    assert records(bought, RecordKind.CONVERTED)[0].step_id == "split"


def test_wait_until_uses_the_customers_time_zone() -> None:
    j = journey(
        [
            {"id": "w", "type": "wait_until", "time": "09:00", "weekdays": ["sat"], "next": "a"},
            {"id": "a", **SEND},
        ]
    )
    tokyo = start(j, person(timezone="Asia/Tokyo"))
    # Monday 2 March 09:00 UTC; Saturday 7 March 09:00 in Tokyo is 00:00 UTC.
    assert tokyo.state.waiting.due_at == datetime(2026, 3, 7, 0, 0, tzinfo=UTC)  # type: ignore[union-attr]
    nowhere = start(j, person(timezone="Not/AZone"))  # unknown zone: the journey's (UTC)
    assert nowhere.state.waiting.due_at == datetime(2026, 3, 7, 9, 0, tzinfo=UTC)  # type: ignore[union-attr]
    exact = journey(
        [{"id": "w", "type": "wait_until", "time": "09:00", "next": "a"}, {"id": "a", **SEND}]
    )
    assert of(start(exact), SendMessage)  # it is 09:00 already: no wait


def test_exit_step_and_events_of_others() -> None:
    j = journey(
        [{"id": "d", "type": "delay", "duration": "1h", "next": "x"}, {"id": "x", "type": "exit"}],
        goal={"event": "Buy"},
    )
    t = start(j)
    assert (
        handle(j, t.state, ev("Buy", T0, pid="someone-else"), person=person(), now=T0).state
        == t.state
    )
    out = handle(
        j,
        t.state,
        TimerInput(t.state.waiting.timer_id),
        person=person(),
        now=T0 + timedelta(hours=1),
    )  # type: ignore[union-attr]
    assert out.state.status is Status.EXITED
    assert records(out, RecordKind.EXITED)[0].step_id == "x"


def test_loops_get_new_attempts_and_keys() -> None:
    j = journey(
        [
            {"id": "a", **SEND, "next": "d"},
            {"id": "d", "type": "delay", "duration": "1d", "next": "sw"},
            {
                "id": "sw",
                "type": "switch",
                "default": "a",
                "cases": [{"when": {"event": "Buy"}, "next": None}],
            },
        ]
    )
    t = start(j)
    fired = handle(
        j,
        t.state,
        TimerInput(t.state.waiting.timer_id),
        person=person(),
        now=T0 + timedelta(days=1),
    )  # type: ignore[union-attr]
    (send,) = of(fired, SendMessage)
    assert send.idempotency_key == "j:p:1/a/2"
    assert fired.state.waiting.timer_id != t.state.waiting.timer_id  # type: ignore[union-attr]


def test_state_and_effects_are_plain_data() -> None:
    j = wait_journey()
    t = start(j)
    plain = to_plain(t.state)
    text = json.dumps(plain)
    assert InstanceState.from_plain(json.loads(text)) == t.state
    effects = json.loads(json.dumps(to_plain(list(t.effects))))
    assert {e["type"] for e in effects} == {"StepRecord", "SendMessage", "ScheduleTimer"}
    with pytest.raises(TypeError):
        json.dumps(t.state)  # the dataclass itself is not JSON: to_plain is the way


def test_instances_stay_on_the_version_they_entered() -> None:
    from wayline.journeys.model import publish

    v1 = publish(
        journey([{"id": "d", "type": "delay", "duration": "1h", "next": "a"}, {"id": "a", **SEND}]),
        1,
    )
    v2 = publish(
        journey([{"id": "d", "type": "delay", "duration": "1h", "next": "b"}, {"id": "b", **SEND}]),
        2,
    )
    t = start(v1)
    assert t.state.version == 1
    with pytest.raises(ValueError, match="v1"):
        handle(v2, t.state, TimerInput("x"), person=person(), now=T0)
    fired = handle(
        v1,
        t.state,
        TimerInput(t.state.waiting.timer_id),
        person=person(),
        now=T0 + timedelta(hours=1),
    )  # type: ignore[union-attr]
    assert [s.step_id for s in of(fired, SendMessage)] == ["a"]
    assert {r.version for r in of(fired, StepRecord)} == {1}
    with pytest.raises(ValueError):
        publish(v1, 0)


def test_fingerprint_ignores_key_order() -> None:
    from wayline.journeys.definition import fingerprint

    a = {"id": "j", "steps": [{"id": "a", "type": "exit"}]}
    b = {"steps": [{"type": "exit", "id": "a"}], "id": "j"}
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint({**a, "id": "k"})


def test_public_api() -> None:
    import wayline.journeys as pkg

    runtime_needs = {
        "load_journey",
        "publish",
        "enter",
        "handle",
        "InstanceState",
        "to_plain",
        "decide_entry",
        "EntryLedger",
        "SendPolicy",
        "DEFAULT_POLICY",
        "compute_stats",
    }
    assert runtime_needs <= set(pkg.__all__)
    assert all(getattr(pkg, name) is not None for name in pkg.__all__)


def test_event_from_row_reads_json_text_and_utc() -> None:
    e = Event.from_row({"event": "X", "person_id": 7, "timestamp": "2026-03-02T09:00:00Z",
                        "properties": '{"a": {"b": 1}}'})  # fmt: skip
    assert e.timestamp == T0 and e.person_id == "7" and e.properties == {"a": {"b": 1}}
    naive = Event.from_row({"event": "X", "person_id": "p", "timestamp": datetime(2026, 3, 2, 9)})
    assert naive.timestamp == T0
