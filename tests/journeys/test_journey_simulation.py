"""The simulator: triggers of every kind, entry rules, reading from DuckDB, and the CLI."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from journey_helpers import T0, in_order, row
from typer.testing import CliRunner

from wayline.journeys.definition import DefinitionError, load_journey, parse_journey
from wayline.journeys.engine import RecordKind
from wayline.journeys.policies import PERMISSIVE_POLICY
from wayline.journeys.simulation import NoResponses, read_events, simulate
from wayline.storage.eventstore import EventStore

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
D, H = timedelta(days=1), timedelta(hours=1)


def sim(journey: Any, rows: list[dict[str, Any]], days: int = 30, since: datetime = T0) -> Any:
    return simulate(
        journey,
        in_order(rows),
        since=since,
        until=since + days * D,
        responses=NoResponses(),
        policy=PERMISSIVE_POLICY,
    )


def test_win_back_enters_60_days_after_the_last_order_at_11_local() -> None:
    journey = load_journey(EXAMPLES / "win-back.yaml")
    rows = [
        # Last order 50 days before the replay starts: due on day 10 of the replay.
        row("old", "Order Completed", T0 - 50 * D),
        # Ordered twice: the second order moves the date past the replay.
        row("loyal", "Order Completed", T0 - 50 * D),
        row("loyal", "Order Completed", T0 + 5 * D),
        row("never", "Product Viewed", T0),
    ]
    result = sim(journey, rows, days=40)
    entries = [(r.person_id, r.at) for r in result.records if r.kind is RecordKind.ENTERED]
    assert entries == [("old", datetime(2026, 3, 12, 11, 0, tzinfo=UTC))]
    assert [(s.step_id, s.at) for s in result.sends] == [
        ("we_miss_you", datetime(2026, 3, 12, 11, 0, tzinfo=UTC)),
        ("sms_nudge", datetime(2026, 3, 19, 11, 0, tzinfo=UTC)),
    ]
    assert result.profile_updates[0].set == {"lifecycle": "lapsed"}


def test_segment_rule_triggers_on_the_edge_only() -> None:
    journey = parse_journey(
        {
            "id": "big-spenders",
            "name": "B",
            "trigger": {"segment_rule": {"event": "Order Completed", "min_count": 2}},
            "entry": {"policy": "again_after", "again_after": "1h"},
            "steps": [{"id": "thanks", "type": "send", "channel": "email", "template": "t"}],
        }
    )
    rows = [row("a", "Order Completed", T0 + i * D) for i in range(4)]
    result = sim(journey, rows)
    assert [s.at for s in result.sends] == [T0 + D]  # the second order, not the third or fourth


def test_named_segment_trigger_and_segment_switch() -> None:
    journey = parse_journey(
        {
            "id": "vip",
            "name": "V",
            "trigger": {"segment": "vip"},
            "steps": [
                {
                    "id": "sw",
                    "type": "switch",
                    "default": "plain",
                    "cases": [{"when": {"segment": "vip"}, "next": "gold"}],
                },
                {"id": "gold", "type": "send", "channel": "email", "template": "gold"},
                {"id": "plain", "type": "send", "channel": "email", "template": "plain"},
            ],
        }
    )
    rows = [
        row("a", "$segment_entered", T0, segment="vip"),
        row("b", "$segment_entered", T0, segment="x"),
    ]
    result = sim(journey, rows)
    assert [(s.person_id, s.template) for s in result.sends] == [("a", "gold")]


def test_entry_window_throttle_and_once() -> None:
    journey = parse_journey(
        {
            "id": "w",
            "name": "W",
            "trigger": {"event": "T"},
            "entry": {
                "window": {"start": (T0 + D).isoformat(), "end": (T0 + 2 * D).isoformat()},
                "throttle": {"max_per_hour": 2},
            },
            "steps": [{"id": "s", "type": "send", "channel": "sms", "template": "t"}],
        }
    )
    rows = [row("early", "T", T0)]
    rows += [row(f"p{i}", "T", T0 + D + i * timedelta(minutes=10)) for i in range(4)]
    rows += [row("p0", "T", T0 + D + 3 * H), row("late", "T", T0 + 2 * D)]
    stats = sim(journey, rows).stats
    assert stats.entered == 2
    assert stats.refused == {"outside_window": 2, "throttled": 2, "once": 1}


def test_split_results_include_the_holdout() -> None:
    journey = load_journey(EXAMPLES / "abandoned-cart.yaml")
    rows = []
    for i in range(400):
        rows.append(row(f"c{i}", "Checkout Started", T0 + i * timedelta(minutes=3)))
        if i % 4 == 0:
            rows.append(row(f"c{i}", "Order Completed", T0 + i * timedelta(minutes=3) + D))
    result = sim(journey, rows, days=10)
    (branches,) = result.stats.splits.values()
    by_name = {b.name: b for b in branches}
    assert set(by_name) == {"holdout", "treatment"}
    assert 20 < by_name["holdout"].customers < 60
    assert by_name["holdout"].customers + by_name["treatment"].customers == 400
    assert sum(b.converted for b in branches) == 100
    held = {
        r.instance_id for r in result.records if r.kind is RecordKind.LEFT and r.branch == "holdout"
    }
    assert not {s.person_id for s in result.sends} & {i.split(":")[1] for i in held}


def _store_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n, r in enumerate(rows):
        out.append(
            {
                **r,
                "workspace_id": "default",
                "message_id": f"e{n}",
                "type": "track",
                "received_at": r["timestamp"],
                "source": "test",
            }
        )
    return out


CREAM = {"product_id": "skincare-cream"}


@pytest.fixture
def store_with_history(home: Path) -> Path:
    rows = in_order(
        [row(f"p{i}", "Product Viewed", T0 + i * H, **CREAM) for i in range(20)]
        + [row(f"p{i}", "Order Completed", T0 + i * H + D, total="12.50") for i in range(0, 20, 5)]
        + [row("p0", "$identify", T0 - 10 * D, traits={"timezone": "Asia/Tokyo"})]
    )
    with EventStore(home / "events.duckdb") as store:
        store.append_rows(_store_rows(rows))
    return home


def test_read_events_from_duckdb(store_with_history: Path) -> None:
    with EventStore(store_with_history / "events.duckdb", read_only=True) as store:
        rows = list(read_events(store.con, since=T0, until=T0 + 2 * D))
    assert len(rows) == 25
    assert (
        rows[0]["event"] == "$identify"
        and json.loads(rows[0]["traits"])["timezone"] == "Asia/Tokyo"
    )
    assert all(r["timestamp"].tzinfo is not None for r in rows)
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
    journey = load_journey(EXAMPLES / "skincare-offer.yaml")
    result = simulate(journey, rows, since=T0, until=T0 + 2 * D, policy=PERMISSIVE_POLICY)
    assert result.stats.entered == 20
    assert result.stats.converted == 4


def test_cli_simulate_json(store_with_history: Path) -> None:
    import wayline.cli.journeys  # noqa: F401  (registers the commands)
    from wayline.cli import app

    args = [
        "journeys",
        "simulate",
        str(EXAMPLES / "skincare-offer.yaml"),
        "--since",
        "2026-03-02",
        "--until",
        "2026-03-20",
        "--json",
        "--rate",
        "email.opened=1",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["entered"] == 20
    assert report["converted"] == 4
    steps = {s["step_id"]: s for s in report["steps"]}
    assert steps["wait_open"]["branches"]["opened"] >= 15  # everyone delivered opens (rate 1)
    table = CliRunner().invoke(app, args[:-3])
    assert table.exit_code == 0 and "offer_email" in table.output


def test_cli_validate_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import wayline.cli.journeys  # noqa: F401
    from wayline.cli import app, main

    ok = CliRunner().invoke(app, ["journeys", "validate", str(EXAMPLES / "skincare-offer.yaml")])
    assert ok.exit_code == 0 and "wait_open" in ok.output
    bad = tmp_path / "journey.yaml"
    bad.write_text(
        "id: j\nname: J\ntrigger: {event: T}\n"
        "steps:\n  - {id: reminder, type: delay, duration: 2 hrs later}\n"
    )
    failed = CliRunner().invoke(app, ["journeys", "validate", str(bad)])
    assert isinstance(failed.exception, DefinitionError)
    monkeypatch.setattr(sys, "argv", ["wayline", "journeys", "validate", str(bad)])
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)  # keep the root logger as is
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert "steps[0] 'reminder' field 'duration'" in capsys.readouterr().err


def test_cli_simulate_user_errors(home: Path) -> None:
    import wayline.cli.journeys  # noqa: F401
    from wayline.cli import app
    from wayline.errors import InputError

    seed = str(EXAMPLES / "skincare-offer.yaml")
    no_store = CliRunner().invoke(
        app, ["journeys", "simulate", seed, "--since", "2026-03-01", "--until", "2026-04-01"]
    )
    assert isinstance(no_store.exception, InputError) and "no events" in str(no_store.exception)
    backwards = CliRunner().invoke(
        app, ["journeys", "simulate", seed, "--since", "2026-04-01", "--until", "2026-03-01"]
    )
    assert isinstance(backwards.exception, InputError) and backwards.exception.field == "--until"
    bad_rate = CliRunner().invoke(
        app, ["journeys", "simulate", seed, "--since", "2026-03-01", "--until", "2026-04-01",
              "--rate", "opened=2"],
    )  # fmt: skip
    assert isinstance(bad_rate.exception, InputError) and bad_rate.exception.field == "--rate"
