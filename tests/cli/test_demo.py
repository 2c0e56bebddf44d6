"""``wayline demo``: generates, loads into the data folder, and shows the first summary."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

import wayline.cli.demo as demo_cli
from wayline.analytics.backend import DuckDBBackend
from wayline.cli import _register, app
from wayline.events.simulator import StoreConfig, load_store, simulate_store
from wayline.storage.eventstore import EventStore

_register()  # all commands, as `wayline` has them (one alone would become the default)
runner = CliRunner()


def _loaded(output: str) -> int:
    match = re.search(r"Loaded ([\d,]+) events", output)
    assert match, output
    return int(match.group(1).replace(",", ""))


def test_demo_generates_loads_and_summarises(home: Path) -> None:
    result = runner.invoke(app, ["demo", "--events", "4000", "--seed", "3"])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("Your sample store", "Average order value", "By device", "mobile"):
        assert text in out
    assert "Purchase funnel" in out
    for step in demo_cli.FUNNEL_STEPS:
        assert step in out
    assert "Problems hidden in this store" in out
    loaded = _loaded(out)
    with EventStore(home / "events.duckdb") as store:
        assert store.count("default") == loaded
        # Identities were resolved: every visitor is one person.
        persons = store.con.execute("SELECT count(DISTINCT person_id) FROM events").fetchone()
        assert persons is not None and f"{persons[0]:,}" in out


def test_demo_again_replaces_the_store(home: Path) -> None:
    assert runner.invoke(app, ["demo", "--events", "3000"]).exit_code == 0
    result = runner.invoke(app, ["demo", "--events", "2000", "--clean"])
    assert result.exit_code == 0, result.output
    assert "clean" in result.output
    assert "Problems hidden" not in result.output
    with EventStore(home / "events.duckdb") as store:
        assert store.count() == _loaded(result.output)


def test_demo_refuses_a_tiny_size(home: Path) -> None:
    result = runner.invoke(app, ["demo", "--events", "10"])
    assert result.exit_code == 2


def test_summary_figures(tmp_path: Path) -> None:
    sim = simulate_store(StoreConfig(seed=4, customers=300))
    with EventStore(tmp_path / "e.duckdb") as store:
        load_store(store, sim)
        s = demo_cli.summarize(DuckDBBackend(store.con), "default")
        funnel = demo_cli.purchase_funnel(DuckDBBackend(store.con), "default")
    assert s.visitors == 300
    assert s.orders == sim.facts.orders
    assert s.revenue == sim.facts.revenue
    assert s.average_order_value == (sim.facts.revenue / sim.facts.orders).quantize(Decimal("0.01"))
    assert {d.device_type for d in s.devices} == {"mobile", "desktop", "tablet"}
    assert sum(d.orders for d in s.devices) == s.orders
    users = [step.users for step in funnel.steps]
    assert users[0] == 300 and users == sorted(users, reverse=True)
    assert users[-1] == s.customers


def test_demo_period_ends_today() -> None:
    start = demo_cli.demo_start(datetime(2026, 11, 23, 15, 30, tzinfo=UTC), days=180)
    assert start == datetime(2026, 5, 28, tzinfo=UTC)
