"""``wayline import`` through Typer's test runner (not a terminal: no progress bar drawn)."""

from __future__ import annotations

from pathlib import Path

import pytest
from importer_support import DATA
from typer.testing import CliRunner

from wayline.cli import _register, app
from wayline.config import Settings
from wayline.storage.eventstore import EventStore

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def registered() -> None:
    # In a fixture, not at import: a broken command module elsewhere fails these tests, not the
    # collection of the whole run.
    _register()


def count(home: Path) -> int:
    with EventStore(Settings().resolved_analytics_path) as store:
        return store.count("default")


def test_import_csv_with_mapping(home: Path) -> None:
    result = runner.invoke(
        app,
        [
            "import",
            str(DATA / "events.csv"),
            "--map",
            "user_id=customer",
            "--map",
            "timestamp=occurred_at",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "events loaded" in result.output and "Product Viewed" in result.output
    assert "\x1b[" not in result.output and "%" not in result.output  # no progress bar drawn
    assert count(home) == 5


def test_import_shopify_dry_run(home: Path) -> None:
    result = runner.invoke(app, ["import", str(DATA / "shopify_orders.csv"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would load" in result.output and "nothing was stored" in result.output
    assert count(home) == 0


def test_import_error_is_a_message_not_a_traceback(home: Path) -> None:
    result = runner.invoke(app, ["import", str(DATA / "events.csv")])
    assert result.exit_code == 2
    assert "events.csv" in result.output and "no timestamp column" in result.output
    assert "Traceback" not in result.output


def test_bad_map_option(home: Path) -> None:
    result = runner.invoke(app, ["import", str(DATA / "events.csv"), "--map", "user_id"])
    assert result.exit_code == 2
    assert "FIELD=COLUMN" in result.output
