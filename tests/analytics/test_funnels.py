"""Funnels on declarative journeys ("this customer did these events at these times")."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from test_funnel_reference import T0, assert_matches_reference, backend, row
from typer.testing import CliRunner

from wayline.analytics.filters import PropertyFilter
from wayline.analytics.funnels import (
    FunnelExclusion,
    FunnelQuery,
    FunnelStep,
    dropped_persons,
    funnel_sql,
    parse_steps,
    parse_window,
    run_funnel,
)
from wayline.errors import InputError

M = timedelta(minutes=1)
D = timedelta(days=1)


def journeys(spec: dict[str, list[tuple[str, timedelta]]], **extra: Any) -> list[dict[str, Any]]:
    """``{"alice": [("a", 0 * M), ("b", 5 * M)]}`` → event rows."""
    return [
        row(person, event, T0 + at, **extra) for person, evs in spec.items() for event, at in evs
    ]


def users(rows: list[dict[str, Any]], query: FunnelQuery) -> list[int]:
    result = assert_matches_reference(rows, query)
    return [s.users for s in result.steps]


def test_ordered_funnel_counts_each_step_and_its_drop_off() -> None:
    rows = journeys(
        {
            "alice": [("a", 0 * M), ("b", 5 * M), ("c", 10 * M)],
            "bob": [("a", 0 * M), ("b", 1 * D)],
            "carol": [("a", 0 * M), ("c", 1 * M)],
            "dave": [("b", 0 * M), ("c", 1 * M)],
        }
    )
    result = run_funnel(backend(rows), FunnelQuery(parse_steps("a,b,c")))
    assert [(s.name, s.users, s.dropped) for s in result.steps] == [
        ("a", 3, 0),
        ("b", 2, 1),
        ("c", 1, 1),
    ]
    assert result.steps[1].conversion == pytest.approx(2 / 3)
    assert result.steps[2].conversion_from_previous == pytest.approx(1 / 2)
    # Bob took a day, Alice 5 minutes: the median of the two, and p90 interpolated.
    assert result.steps[1].median_seconds == pytest.approx((300 + 86_400) / 2)
    assert result.steps[1].p90_seconds == pytest.approx(300 + 0.9 * (86_400 - 300))


def test_the_window_counts_from_step_one_and_every_step_one_starts_an_attempt() -> None:
    rows = journeys({"u": [("a", 0 * D), ("a", 10 * D), ("b", 12 * D), ("c", 18 * D)]})
    assert users(rows, FunnelQuery(parse_steps("a,b,c"), window=7 * D)) == [1, 1, 0]
    assert users(rows, FunnelQuery(parse_steps("a,b,c"), window=8 * D)) == [1, 1, 1]
    assert users(rows, FunnelQuery(parse_steps("a,b,c"), window=None)) == [1, 1, 1]
    # The window is inclusive.
    assert users(rows, FunnelQuery(parse_steps("a,b"), window=2 * D)) == [1, 1]


def test_events_at_the_same_instant_do_not_follow_each_other() -> None:
    rows = journeys({"u": [("a", 0 * M), ("b", 0 * M)]})
    assert users(rows, FunnelQuery(parse_steps("a,b"))) == [1, 0]
    assert users(rows, FunnelQuery(parse_steps("a,b"), order="any")) == [1, 1]


def test_repeated_steps_need_distinct_events() -> None:
    once = journeys({"u": [("a", 0 * M)]})
    twice = journeys({"u": [("a", 0 * M), ("a", 1 * M)]})
    assert users(once, FunnelQuery(parse_steps("a,a"))) == [1, 0]
    assert users(twice, FunnelQuery(parse_steps("a,a,a"))) == [1, 1, 0]
    # A step accepting several events, sharing one with the next step.
    rows = journeys({"u": [("b", 0 * M), ("b", 1 * M)]})
    assert users(rows, FunnelQuery(parse_steps("a|b,b"))) == [1, 1]


def test_strict_order_allows_nothing_between_steps_but_identify_calls() -> None:
    rows = journeys(
        {
            "direct": [("a", 0 * M), ("$identify", 1 * M), ("b", 2 * M)],
            "detour": [("a", 0 * M), ("x", 1 * M), ("b", 2 * M)],
        }
    )
    q = FunnelQuery(parse_steps("a,b"), order="strict")
    assert users(rows, q) == [2, 1]
    assert dropped_persons(backend(rows), q, 2) == ["detour"]


def test_any_order_needs_every_step_within_the_window() -> None:
    rows = journeys(
        {
            "backwards": [("c", 0 * M), ("b", 1 * M), ("a", 2 * M)],
            "slow": [("b", 0 * D), ("a", 20 * D)],
        }
    )
    assert users(rows, FunnelQuery(parse_steps("a,b,c"), order="any")) == [2, 1, 1]
    assert users(rows, FunnelQuery(parse_steps("a,b,c"), order="any", window=None)) == [2, 2, 1]


def test_an_exclusion_between_steps_removes_the_attempt_from_that_step_on() -> None:
    rows = journeys(
        {
            "clean": [("a", 0 * M), ("b", 2 * M), ("c", 3 * M)],
            "excluded": [("a", 0 * M), ("x", 1 * M), ("b", 2 * M), ("c", 3 * M)],
            # x at the very instant of step 1 is not *between* steps 1 and 2.
            "same_instant": [("a", 0 * M), ("x", 0 * M), ("b", 2 * M)],
            # A clean second attempt counts.
            "again": [("a", 0 * M), ("x", 1 * M), ("a", 5 * M), ("b", 6 * M)],
        }
    )
    q = FunnelQuery(parse_steps("a,b,c"), exclusions=(FunnelExclusion(("x",), (), 1, 2),))
    assert users(rows, q) == [4, 3, 1]
    assert dropped_persons(backend(rows), q, 2) == ["excluded"]


def test_several_exclusions_may_end_at_the_same_step() -> None:
    rows = journeys(
        {
            "clean": [("a", 0 * M), ("b", 2 * M), ("c", 4 * M)],
            "x_early": [("a", 0 * M), ("x", 1 * M), ("b", 2 * M), ("c", 4 * M)],
            "y_late": [("a", 0 * M), ("b", 2 * M), ("y", 3 * M), ("c", 4 * M)],
            "y_early": [("a", 0 * M), ("y", 1 * M), ("b", 2 * M), ("c", 4 * M)],
        }
    )
    q = FunnelQuery(
        parse_steps("a,b,c"),
        exclusions=(FunnelExclusion(("x",), (), 1, 3), FunnelExclusion(("y",), (), 2, 3)),
    )
    assert users(rows, q) == [4, 4, 2]
    assert dropped_persons(backend(rows), q, 3) == ["x_early", "y_late"]


def test_merged_identities_are_one_customer() -> None:
    rows = [
        row("alice", "a", T0, anonymous_id="anon-1"),
        row("alice", "b", T0 + M),  # after she signed in: same resolved person
    ]
    assert users(rows, FunnelQuery(parse_steps("a,b"))) == [1, 1]


def test_breakdown_takes_the_first_touch_value() -> None:
    rows = [
        row("u1", "a", T0, channel="ads"),
        row("u1", "a", T0 + M, channel="email"),
        row("u1", "b", T0 + 2 * M, channel="email"),
        row("u2", "a", T0, channel="email"),
        # Two first touches at the same instant: the smallest value, whatever the row order.
        row("u3", "a", T0, channel="social"),
        row("u3", "a", T0, channel="direct"),
        row("u4", "a", T0),
    ]
    result = assert_matches_reference(rows, FunnelQuery(parse_steps("a,b"), breakdown="channel"))
    by_value = {b.value: [s.users for s in b.steps] for b in result.breakdown}
    assert by_value == {"ads": [1, 1], "email": [1, 0], "direct": [1, 0], None: [1, 0]}
    assert set(result.to_dict()["breakdown"]) == {"ads", "email", "direct", "(none)"}


def test_breakdown_by_profile_trait_and_cohort() -> None:
    rows = [
        row("u1", "$identify", T0 - D, traits={"persona": "bargain"}),
        row("u1", "$identify", T0, traits={"persona": "loyal"}),
        row("u1", "a", T0 + M),
        row("u2", "a", T0 + 40 * D),
    ]
    for key in ("persona", "traits.persona"):
        result = assert_matches_reference(rows, FunnelQuery(parse_steps("a"), breakdown=key))
        assert {b.value for b in result.breakdown} == {"loyal", None}
    result = assert_matches_reference(rows, FunnelQuery(parse_steps("a"), breakdown="cohort"))
    assert {b.value for b in result.breakdown} == {"2026-03", "2026-04"}


def test_step_filters_and_date_range() -> None:
    rows = [
        row("u1", "a", T0, properties={"price": 30}),
        row("u1", "b", T0 + M),
        row("u2", "a", T0, properties={"price": 5}),
        row("u2", "b", T0 + M),
        row("u3", "a", T0 + 3 * D, properties={"price": 30}),
        row("u3", "b", T0 + 3 * D + M),
    ]
    q = FunnelQuery(
        (FunnelStep(("a",), filters=(PropertyFilter("price", "gte", 10),)), FunnelStep(("b",)))
    )
    assert users(rows, q) == [2, 2]
    assert users(rows, FunnelQuery(parse_steps("a[price>=10],b"), until=T0 + D)) == [1, 1]
    assert users(rows, FunnelQuery(parse_steps("a,b"), since=T0 + D)) == [1, 1]


def test_by_session_attempts_stay_inside_a_session() -> None:
    rows = [
        row("u1", "a", T0, session_id="s1"),
        row("u1", "b", T0 + M, session_id="s2"),
        row("u1", "a", T0 + 2 * M, session_id="s2"),
        row("u1", "b", T0 + 3 * M, session_id="s2"),
        # Inferred sessions: 2 hours of inactivity splits them.
        row("u2", "a", T0),
        row("u2", "b", T0 + timedelta(hours=2)),
    ]
    assert users(rows, FunnelQuery(parse_steps("a,b"), by="session")) == [3, 1]
    assert users(rows, FunnelQuery(parse_steps("a,b"))) == [2, 2]


def test_by_session_a_gap_of_exactly_30_minutes_does_not_split() -> None:
    rows = [
        # An event of no step keeps the visit going: sessions are cut from every event.
        row("u1", "a", T0),
        row("u1", "x", T0 + timedelta(minutes=30)),
        row("u1", "b", T0 + timedelta(minutes=60)),
        # 30 minutes and a second: a new visit, so the funnel stops at step 1 here.
        row("u2", "a", T0),
        row("u2", "b", T0 + timedelta(minutes=30, seconds=1)),
    ]
    assert users(rows, FunnelQuery(parse_steps("a,b"), by="session")) == [2, 1]


def test_other_workspaces_are_invisible() -> None:
    rows = journeys({"u": [("a", 0 * M), ("b", M)]}, workspace_id="other")
    assert users(rows, FunnelQuery(parse_steps("a,b"))) == [0, 0]
    assert users(rows, FunnelQuery(parse_steps("a,b"), workspace_id="other")) == [1, 1]


def test_sql_is_built_per_dialect_and_transpiles() -> None:
    q = FunnelQuery(
        parse_steps("a,b[k=1],c"),
        exclusions=(FunnelExclusion(("x",)),),
        breakdown="persona",
    )
    duck = funnel_sql(q, "duckdb")
    pg = funnel_sql(q, "postgres")
    assert "ASOF JOIN" in duck.text and "hash(person_id)" in duck.text
    assert "ASOF" not in pg.text and "jsonb_extract_path_text" in pg.text
    assert duck.text.count("?") == len(duck.params)
    assert pg.text.count("?") == len(pg.params)
    sqlglot.transpile(pg.text, read="duckdb", write="postgres")


def test_invalid_queries_say_what_is_wrong() -> None:
    with pytest.raises(InputError, match="at least one step"):
        run_funnel(backend([]), FunnelQuery(()))
    with pytest.raises(InputError, match="exclusions need an order"):
        run_funnel(
            backend([]),
            FunnelQuery(parse_steps("a,b"), order="any", exclusions=(FunnelExclusion(("x",)),)),
        )
    with pytest.raises(InputError, match="from < to"):
        run_funnel(
            backend([]),
            FunnelQuery(parse_steps("a,b"), exclusions=(FunnelExclusion(("x",), (), 2, 2),)),
        )
    with pytest.raises(InputError, match="window"):
        parse_window("soon")
    with pytest.raises(InputError):
        parse_steps("a,b[price>>3]")
    assert parse_window("7d") == 7 * D and parse_window("none") is None
    assert parse_window("90m") == timedelta(minutes=90)
    step = parse_steps("Product Viewed|Product Added[category=shoes;price>=10],c")[0]
    assert step.events == ("Product Viewed", "Product Added")
    assert step.filters == (
        PropertyFilter("category", "eq", "shoes"),
        PropertyFilter("price", "gte", 10),
    )


# ---------------------------------------------------------------------------------------------
# The command line


@pytest.fixture
def store(home: Path) -> Path:
    from wayline.config import Settings
    from wayline.storage.eventstore import EventStore

    rows = journeys(
        {
            "alice": [("a", 0 * M), ("b", 5 * M), ("c", 10 * M)],
            "bob": [("a", 0 * M), ("b", 1 * D)],
            "carol": [("a", 0 * M)],
        },
        channel="ads",
    )
    path = Settings().resolved_analytics_path
    with EventStore(path) as es:
        es.append_rows(rows)
    return path


def _cli(*args: str) -> Any:
    import typer

    from wayline.cli.funnel import funnel_command

    # An app of its own with two commands, so that "funnel" is a sub-command whichever other
    # command modules happen to be imported.
    app = typer.Typer()
    app.command("funnel")(funnel_command)
    app.command("noop")(lambda: None)
    return CliRunner().invoke(app, list(args))


def test_cli_prints_json_with_steps_and_breakdown(store: Path) -> None:
    out = _cli("funnel", "--steps", "a,b|x,c", "--window", "7d", "--breakdown", "channel", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [(s["name"], s["users"]) for s in data["steps"]] == [("a", 3), ("b|x", 2), ("c", 1)]
    assert data["steps"][1]["dropped"] == 1
    assert data["steps"][1]["median_seconds"] == pytest.approx((300 + 86_400) / 2)
    assert [s["users"] for s in data["breakdown"]["ads"]] == [3, 2, 1]


def test_cli_prints_a_table_and_drop_off_lists(store: Path) -> None:
    out = _cli("funnel", "--steps", "a,b,c", "--order", "strict", "--window", "none")
    assert out.exit_code == 0, out.output
    assert "customers" in out.output and "66.7%" in out.output
    out = _cli("funnel", "--steps", "a,b,c", "--dropped-at", "2")
    assert out.exit_code == 0, out.output
    assert out.output.split() == ["carol"]
    out = _cli("funnel", "--steps", "a,b,c", "--dropped-at", "3", "--json")
    assert json.loads(out.output)["person_ids"] == ["bob"]


def test_cli_rejects_bad_options(store: Path) -> None:
    out = _cli("funnel", "--steps", "a,b", "--order", "sideways")
    assert out.exit_code != 0
    assert isinstance(out.exception, InputError)


SNAPSHOTS = Path(__file__).parent / "funnel_snapshots"


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
def test_sql_snapshots(dialect: str, order: str) -> None:
    """The generated SQL, per dialect and order, as reviewed (``WAYLINE_UPDATE_SNAPSHOTS=1``
    rewrites the files after an intended change)."""
    import os

    exclusions = (FunnelExclusion(("x",), (), 1, 2),) if order != "any" else ()
    q = FunnelQuery(
        parse_steps("a,b|c[k=1],d"),
        window=7 * D,
        order=order,  # type: ignore[arg-type]
        exclusions=exclusions,
        breakdown="channel",
    )
    sql = funnel_sql(q, dialect)
    text = sql.text + "\n-- params: " + repr(sql.params) + "\n"
    path = SNAPSHOTS / f"{order}.{dialect}.sql"
    if os.environ.get("WAYLINE_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def test_cli_exclusion_syntax() -> None:
    from wayline.analytics.params import parse_exclusion

    assert parse_exclusion("x") == FunnelExclusion(("x",))
    assert parse_exclusion("x|y[k=1]@2-3") == FunnelExclusion(
        ("x", "y"), (PropertyFilter("k", "eq", "1"),), 2, 3
    )
    with pytest.raises(InputError):
        parse_exclusion("x,y")
