"""Journey files: the examples load; every mistake is reported with its step and field."""

from __future__ import annotations

import json
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from wayline.errors import InputError
from wayline.journeys.definition import DefinitionError, load_journey, parse_journey
from wayline.journeys.model import (
    EntryMode,
    EventTrigger,
    MessageEngagement,
    Op,
    ScheduleTrigger,
    SegmentTrigger,
    WaitForStep,
)

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"


def base(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "j",
        "name": "J",
        "trigger": {"event": "Signed Up"},
        "steps": [
            {"id": "hello", "type": "send", "channel": "email", "template": "t", "next": "wait"},
            {"id": "wait", "type": "delay", "duration": "1d"},
        ],
    }
    doc.update(overrides)
    return doc


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        parse_journey(doc, source="journey.yaml")
    text = str(info.value)
    assert all(line.startswith("journey.yaml: ") for line in text.splitlines())
    return text.splitlines()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_are_valid(path: Path) -> None:
    journey = load_journey(path)
    assert journey.id == path.stem
    assert journey.version == 0


def test_the_five_examples_ship() -> None:
    names = {p.stem for p in EXAMPLES.glob("*.yaml")}
    assert names == {"skincare-offer", "abandoned-cart", "welcome", "review-request", "win-back"}


def test_seed_example_reads_as_intended() -> None:
    j = load_journey(EXAMPLES / "skincare-offer.yaml")
    assert isinstance(j.trigger, EventTrigger)
    assert j.trigger.matcher.event == "Product Viewed"
    assert j.trigger.matcher.where[0].value == "skincare-cream"
    assert j.goal is not None and j.goal.matcher.event == "Order Completed"
    assert j.entry.mode is EntryMode.AGAIN_AFTER and j.entry.reentry_after == timedelta(days=30)
    wait = j.step("wait_open")
    assert isinstance(wait, WaitForStep)
    assert wait.branches[0].on == MessageEngagement(
        "offer_email", wait.branches[0].on.channel, "opened"
    )  # type: ignore[union-attr]
    assert j.step("two_days").duration == timedelta(days=2)  # type: ignore[union-attr]


def test_json_files_load(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text(json.dumps(base()))
    assert load_journey(path).start == "hello"


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n")
    with pytest.raises(InputError, match=r"broken\.yaml"):
        load_journey(path)


def test_bad_duration_names_step_and_field() -> None:
    doc = base()
    doc["steps"][1]["duration"] = "2 hrs later"
    assert problems(doc) == [
        "journey.yaml: steps[1] 'wait' field 'duration': '2 hrs later' is not a duration: "
        "write a duration like 30m, 2h, 1d12h, '2 days', '90 minutes' or P2D "
        "(weeks, days, hours, minutes, seconds; months and years have no fixed length)"
    ]


def test_shape_errors_are_all_reported() -> None:
    doc = base()
    doc["steps"][0]["chanel"] = "email"
    doc["steps"][1]["type"] = "sleep"
    doc["steps"].append({"id": "x", "type": "send", "channel": "fax", "template": "t"})
    lines = problems(doc)
    assert any("steps[0] 'hello' field 'chanel': unknown field" in line for line in lines)
    assert any("steps[1] 'wait': unknown step type 'sleep'" in line for line in lines)
    assert any("steps[2] 'x' field 'channel'" in line and "email" in line for line in lines)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["steps"][1].update(next="nowhere"),
            "steps[1] 'wait': next goes to unknown step 'nowhere'",
        ),
        (lambda d: d["steps"][0].update(next=None), "steps[1] 'wait': unreachable"),
        (lambda d: d["steps"].append({"id": "hello", "type": "exit"}), "duplicate step id"),
        (lambda d: d["steps"][0].update(id="bad id!"), "field 'id'"),
        (lambda d: d.update(timezone="Mars/Olympus"), "unknown time zone"),
        (lambda d: d.update(trigger={"event": "X", "segment": "vip"}), "exactly one of"),
        (lambda d: d.update(entry={"policy": "again_after"}), "field 'entry.again_after'"),
        (
            lambda d: d.update(
                entry={"window": {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}}
            ),
            "ends before it starts",
        ),
        (lambda d: d.update(entry={"window": {"start": "2026-02-01T00:00:00"}}), "no time zone"),
        (lambda d: d.update(trigger={"event": "X", "where": {"price": {"in": 3}}}), "needs a list"),
    ],
)
def test_meaning_errors(mutate: Any, expected: str) -> None:
    doc = base()
    mutate(doc)
    assert any(expected in line for line in problems(doc)), problems(doc)


def test_cycle_without_wait_is_refused_but_with_a_delay_is_fine() -> None:
    doc = base(
        steps=[
            {"id": "a", "type": "send", "channel": "email", "template": "t", "next": "b"},
            {"id": "b", "type": "update_profile", "set": {"x": 1}, "next": "a"},
        ]
    )
    assert any("cycle without a delay or wait" in p for p in problems(doc))
    doc["steps"][1]["next"] = "c"
    doc["steps"].append({"id": "c", "type": "delay", "duration": "1d", "next": "a"})
    parse_journey(doc)


def wait_for(**branch: Any) -> dict[str, Any]:
    return base(
        steps=[
            {"id": "mail", "type": "send", "channel": "email", "template": "t", "next": "w"},
            {"id": "w", "type": "wait_for", "timeout": "2d", "branches": [branch]},
        ]
    )


def test_wait_for_checks_the_message_and_its_channel() -> None:
    assert parse_journey(wait_for(message="mail", action="opened")).step("w")
    lines = problems(wait_for(message="mail", action="read"))
    assert lines == [
        "journey.yaml: steps[1] 'w' field 'branches[0]': email messages report delivered, "
        "opened, clicked, bounced, unsubscribed; not 'read'"
    ]
    assert any(
        "must name a send step" in p for p in problems(wait_for(message="w", action="opened"))
    )
    assert any("either a message" in p for p in problems(wait_for(action="opened")))


def test_wait_for_a_message_sent_only_later_is_refused() -> None:
    doc = base(
        steps=[
            {
                "id": "w",
                "type": "wait_for",
                "timeout": "2d",
                "on_timeout": "mail",
                "branches": [{"message": "mail", "action": "opened"}],
            },
            {"id": "mail", "type": "send", "channel": "email", "template": "t"},
        ]
    )
    assert any("never comes before this step" in p for p in problems(doc))


def test_conditions_filters_and_triggers_parse() -> None:
    doc = base(
        trigger={
            "segment_rule": {
                "all": [{"trait": "plan", "value": "pro"}, {"not": {"segment": "churned"}}]
            }
        },
        goal={
            "event": "Order Completed",
            "where": [{"property": "total", "op": "gte", "value": 20}],
        },
    )
    doc["steps"].insert(
        1,
        {
            "id": "sw",
            "type": "switch",
            "default": "wait",
            "cases": [
                {
                    "when": {
                        "event": "Order Completed",
                        "where": {"total": {"gt": 50}},
                        "min_count": 2,
                        "within": "90d",
                    },
                    "next": "wait",
                }
            ],
        },
    )
    doc["steps"][0]["next"] = "sw"
    j = parse_journey(doc)
    assert isinstance(j.trigger, SegmentTrigger) and j.trigger.rule is not None
    assert j.goal is not None and j.goal.matcher.where[0].op is Op.GTE
    case = j.step("sw").cases[0]  # type: ignore[union-attr]
    assert case.name == "case_1"
    assert case.when.matcher.where[0].op is Op.GT
    assert case.when.within == timedelta(days=90)


def test_condition_errors_point_inside_the_case() -> None:
    doc = base()
    doc["steps"].insert(1, {"id": "sw", "type": "switch", "cases": [{"when": {"colour": "red"}}]})
    doc["steps"][0]["next"] = "sw"
    lines = problems(doc)
    assert any(
        "steps[1] 'sw' field 'cases[0].when'" in p and "a condition has one of" in p for p in lines
    ), lines


def test_schedule_trigger_and_unquoted_yaml_times() -> None:
    doc = yaml.safe_load(
        "id: bday\nname: B\ntrigger:\n  schedule:\n    date_trait: birthday\n    at: 09:30\n"
        "    offset: -7d\nsteps:\n  - {id: s, type: send, channel: sms, template: t}\n"
    )
    j = parse_journey(doc)
    assert isinstance(j.trigger, ScheduleTrigger)
    assert j.trigger.at == time(9, 30)  # YAML read 09:30 as 570
    assert j.trigger.offset == -timedelta(days=7)


def test_nested_condition_errors_have_readable_paths() -> None:
    doc = base(
        trigger={
            "segment_rule": {
                "all": [{"trait": "x", "op": "bogus"}, {"not": {"event": "E", "min_count": -1}}]
            }
        }
    )
    lines = problems(doc)
    assert any("field 'trigger.segment_rule.all[0].op'" in line for line in lines), lines
    assert any("field 'trigger.segment_rule.all[1].not.min_count'" in line for line in lines)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_use_shipped_templates_and_their_params(path: Path) -> None:
    from wayline.channels.templates.library import TemplateLibrary
    from wayline.journeys.model import SendStep

    library = TemplateLibrary()
    for step in load_journey(path).steps:
        if isinstance(step, SendStep):
            spec = library.get(step.template).spec
            assert getattr(spec, step.channel.value) is not None, (step.id, step.channel)
            assert set(step.variables) <= set(spec.params), (step.id, step.variables)
