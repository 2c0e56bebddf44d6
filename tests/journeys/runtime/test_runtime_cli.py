"""``wayline journeys publish|pause|archive|list|stats`` against the data folder's SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from runtime_support import T0, add_profiles, series, track
from typer.testing import CliRunner

import wayline.cli.journeys  # noqa: F401  (registers the commands)
from wayline.cli import app
from wayline.config import Settings
from wayline.errors import InputError, NotFound
from wayline.journeys.runtime import JourneyRuntime
from wayline.storage.db import Database

runner = CliRunner()


def _write(tmp_path: Path, doc: dict[str, object]) -> Path:
    path = tmp_path / "series.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_publish_list_pause_stats_archive(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, series(delay="1h", goal=False))
    result = runner.invoke(app, ["journeys", "publish", str(path)])
    assert result.exit_code == 0, result.output
    assert "version 1 published" in result.output
    again = runner.invoke(app, ["journeys", "publish", str(path)])
    assert "unchanged: version 1" in again.output
    _write(tmp_path, series(delay="2h", goal=False))
    assert "version 2 published" in runner.invoke(app, ["journeys", "publish", str(path)]).output

    with Database.open(Settings()) as db:
        add_profiles(db, ["u1"])
        db.accept("default", [track("u1", "Signed Up", T0)], T0)
        JourneyRuntime(db, clock=lambda: T0).drain()

    listed = json.loads(runner.invoke(app, ["journeys", "list", "--json"]).output)
    assert [(j["journey_id"], j["status"], j["live_version"], j["versions"], j["active"])
            for j in listed] == [("series", "live", 2, 2, 1)]  # fmt: skip
    stats = json.loads(runner.invoke(app, ["journeys", "stats", "series", "--json"]).output)
    assert stats["entered"] == 1 and stats["sent_by_channel"] == {"email": 1}
    table = runner.invoke(app, ["journeys", "stats", "series"])
    assert table.exit_code == 0 and "send_0" in table.output

    assert runner.invoke(app, ["journeys", "pause", "series"]).exit_code == 0
    assert "paused" in runner.invoke(app, ["journeys", "list"]).output
    assert runner.invoke(app, ["journeys", "archive", "series"]).exit_code == 0
    refused = runner.invoke(app, ["journeys", "publish", str(path)])
    assert isinstance(refused.exception, InputError) and "archived" in str(refused.exception)


def test_publish_refuses_an_invalid_file_and_names_the_problem(home: Path, tmp_path: Path) -> None:
    doc = series()
    doc["steps"][0]["channel"] = "pigeon"  # type: ignore[index]
    result = runner.invoke(app, ["journeys", "publish", str(_write(tmp_path, doc))])
    assert isinstance(result.exception, InputError)  # the CLI prints it, exit code 2
    assert "send_0" in str(result.exception)


def test_unknown_journey_is_a_clear_error(home: Path) -> None:
    result = runner.invoke(app, ["journeys", "pause", "nope"])
    assert isinstance(result.exception, NotFound) and "nope" in str(result.exception)
