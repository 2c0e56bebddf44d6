"""The paths, retention, rfm and lifecycle commands, end to end on a real store file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from journey_logs import ev
from typer.testing import CliRunner

import wayline.cli.paths  # noqa: F401 - registers the commands
from wayline.cli import app
from wayline.config import Settings
from wayline.errors import ConfigError, InputError
from wayline.storage.eventstore import EventStore

runner = CliRunner()
T = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)
M = timedelta(minutes=1)


@pytest.fixture
def store(home: Path) -> Path:
    rows = []
    for i in range(6):
        p = f"c{i}"
        rows += [
            ev(p, "$page", T + i * M, page_path="/"),
            ev(p, "$page", T + (i + 1) * M, page_path=f"/product/{i}"),
            ev(p, "Product Added", T + (i + 2) * M),
        ]
        if i % 2 == 0:
            rows.append(ev(p, "Order Completed", T + (i + 3) * M, revenue="25.00"))
            rows.append(ev(p, "Order Completed", T + timedelta(days=35 + i), revenue="10.00"))
    path = Settings().resolved_analytics_path
    with EventStore(path) as s:
        s.append_rows(rows)
    return path


def test_paths_json_is_a_sankey(store: Path) -> None:
    out = runner.invoke(
        app, ["paths", "--group", "/product/.*=product_view", "--steps", "3", "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["units"] == 6
    ids = {n["id"] for n in data["nodes"]}
    assert "2_product_view" in ids
    link = next(
        x for x in data["links"] if x["source"] == "1_/" and x["target"] == "2_product_view"
    )
    assert (link["value"], link["median_seconds"]) == (6, 60.0)


def test_paths_from_and_tables(store: Path) -> None:
    out = runner.invoke(app, ["paths", "--from", "Product Added", "--steps", "2"])
    assert out.exit_code == 0, out.output
    assert "top paths" in out.output and "Order Completed" in out.output
    out = runner.invoke(app, ["paths", "--transitions", "--json"])
    assert out.exit_code == 0, out.output
    assert any(t["source"] == "path_start" for t in json.loads(out.output)["transitions"])


def test_retention_rfm_lifecycle(store: Path) -> None:
    out = runner.invoke(app, ["retention", "--period", "week", "--json"])
    assert out.exit_code == 0, out.output
    cohorts = json.loads(out.output)["cohorts"]
    assert cohorts[0]["size"] == 3 and cohorts[0]["retained"][0] == 3
    out = runner.invoke(app, ["rfm", "--json", "--customers", "3"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["repeat_purchase"]["repeat_purchase_rate"] == 1.0
    assert len(data["rfm"]["customers"]) == 3
    for command in (["rfm", "--customers", "2"], ["lifecycle"], ["retention"]):
        out = runner.invoke(app, command)
        assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["lifecycle", "--period", "month", "--json"])
    assert sum(p["new"] for p in json.loads(out.output)["periods"]) == 6


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["paths", "--steps", "0"], "steps"),
        (["retention", "--period", "year"], "--period"),
        (["paths", "--since", "yesterday"], "--since"),
        (["paths", "--group", "nonsense"], "group"),
    ],
)
def test_bad_input_is_an_input_error(store: Path, args: list[str], field: str) -> None:
    out = runner.invoke(app, args)
    assert isinstance(out.exception, InputError)
    assert out.exception.field == field


def test_missing_store_is_a_config_error(home: Path) -> None:
    out = runner.invoke(app, ["lifecycle"])
    assert isinstance(out.exception, ConfigError)
