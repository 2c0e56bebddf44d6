"""``wayline map``, ``map-history``, ``map-config`` and the demo's journey-map section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from map_logs import small_store_rows
from typer.testing import CliRunner

import wayline.cli.demo
import wayline.cli.map  # noqa: F401  - registers `map`
from wayline.cli import app
from wayline.errors import InputError
from wayline.storage.eventstore import EventStore

runner = CliRunner()
PERIOD = ["--since", "2026-03-01", "--until", "2026-03-11"]


@pytest.fixture
def store_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    with EventStore(home / "events.duckdb") as store:
        store.append_rows(small_store_rows())
    return home


def test_map_markdown(store_home: Path) -> None:
    result = runner.invoke(app, ["map", *PERIOD, "--no-pain-points"])
    assert result.exit_code == 0, result.output
    assert (
        "| Stage | Customer action | Touchpoints | Pain point | Solution | KPI |" in result.stdout
    )
    assert "| Decision | Product Added (2)" in result.stdout


def test_map_json_compare_and_side_by_side(store_home: Path) -> None:
    result = runner.invoke(
        app,
        [
            "map",
            *PERIOD,
            "--compare",
            "previous",
            "--breakdown",
            "device",
            "--format",
            "json",
            "--no-pain-points",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [v["label"] for v in data["views"]] == ["device: desktop", "device: mobile"]
    assert data["previous_until"].startswith("2026-03-01")
    assert data["views"][0]["persons"] == {
        "value": 2,
        "unit": "count",
        "previous": 0,
        "change": 2,
        "change_ratio": None,
    }


def test_map_to_file_html_and_csv(store_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    result = runner.invoke(
        app, ["map", *PERIOD, "--format", "html", "-o", str(out), "--device", "mobile"]
    )
    assert result.exit_code == 0, result.output
    assert "<h2>device_type: mobile</h2>" in out.read_text() or "mobile" in out.read_text()
    result = runner.invoke(app, ["map", *PERIOD, "--format", "csv", "--no-pain-points"])
    assert result.stdout.startswith("view,stage,section,name,metric")


def test_snapshots_and_history(store_home: Path) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["map", *PERIOD, "--snapshot", "--no-pain-points"])
        assert result.exit_code == 0, result.output
    snaps = sorted((store_home / "snapshots" / "default").glob("*.json"))
    assert len(snaps) == 2
    result = runner.invoke(
        app, ["map-history", "--stage", "decision", "--kpi", "conversion_rate", "--json"]
    )
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout)
    assert len(points) == len(snaps)
    assert points[0]["value"] == "0.25" and points[0]["unit"] == "rate"


def test_user_file_notes_and_errors(store_home: Path) -> None:
    result = runner.invoke(app, ["map-config"])
    assert result.exit_code == 0
    path = store_home / "journeymap.yaml"
    assert "stages:" in path.read_text()
    path.write_text('stages:\n  decision:\n    thoughts: ["Is shipping free?"]\n')
    result = runner.invoke(app, ["map", *PERIOD, "--no-pain-points"])
    assert "Is shipping free?" in result.stdout
    path.write_text("events:\n  Foo: {stage: later, touchpoint: x}\n")
    result = runner.invoke(app, ["map", *PERIOD])
    assert isinstance(result.exception, InputError)
    assert result.exception.row == 2 and result.exception.field == "events.Foo.stage"


def test_bad_options(store_home: Path) -> None:
    result = runner.invoke(app, ["map", "--format", "docx"])
    assert isinstance(result.exception, InputError)
    result = runner.invoke(app, ["map", "--format", "png"])
    assert isinstance(result.exception, InputError) and "--output" in str(result.exception)
    result = runner.invoke(app, ["map", "--compare", "last-year"])
    assert isinstance(result.exception, InputError)


def test_demo_ends_with_the_journey_map(home: Path) -> None:
    result = runner.invoke(app, ["demo", "--events", "20000"])
    assert result.exit_code == 0, result.output
    assert "Your customer journey map" in result.stdout
    assert "Journey map written to" in result.stdout
    assert (home / "journey-map.html").read_text().startswith("<!doctype html>")
    assert "| Stage | Customer action |" in (home / "journey-map.md").read_text()
