"""``wayline templates``: list, preview (sample data and a real customer), validate, copy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

import wayline.cli.templates  # noqa: F401  (registers the commands)
from wayline.cli import app
from wayline.config import Settings
from wayline.errors import InputError, NotFound
from wayline.events.normalize import normalize
from wayline.storage.eventstore import EventStore

runner = CliRunner()
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_list_shows_the_prebuilt_library(home: Path) -> None:
    result = runner.invoke(app, ["templates", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("welcome", "abandoned_cart", "win_back", "survey_invitation"):
        assert name in result.output


def test_preview_with_sample_data_and_overrides(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "cart.html"
    result = runner.invoke(
        app,
        ["templates", "preview", "abandoned_cart", "--var", "customer.first_name=Bea",
         "--var", "headline=Your picks", "--html", str(out)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Subject: Bea, your cart is waiting" in result.output
    assert "Your picks" in result.output
    assert "abandoned_cart_reminder" in result.output  # the WhatsApp template
    assert "<!DOCTYPE html>" in out.read_text()


def test_preview_refuses_an_undeclared_parameter(home: Path) -> None:
    result = runner.invoke(app, ["templates", "preview", "welcome", "--var", "percent=5"])
    assert isinstance(result.exception, InputError)
    assert "unknown parameter" in str(result.exception)


def test_preview_for_a_customer_from_the_analytics_store(home: Path) -> None:
    def row(message: dict[str, object]) -> dict[str, object]:
        return normalize(message, workspace_id="ws", received_at=NOW)

    with EventStore(Settings().resolved_analytics_path) as store:
        store.append_rows(
            [
                row({"type": "identify", "userId": "cus_42", "messageId": "1",
                     "timestamp": "2026-11-01T00:00:00Z",
                     "traits": {"email": "rui@example.com", "first_name": "Rui"}}),
                row({"type": "track", "userId": "cus_42", "messageId": "2",
                     "event": "Checkout Started", "timestamp": "2026-11-19T00:00:00Z",
                     "properties": {"cart_id": "c9", "currency": "EUR", "products": [
                         {"product_id": "p1", "name": "Cork wallet", "price": 35,
                          "quantity": 1}]}}),
            ]
        )  # fmt: skip
    result = runner.invoke(
        app,
        ["templates", "preview", "abandoned_cart", "--customer", "cus_42", "--channel", "email"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "Subject: Rui, your cart is waiting" in result.output
    assert "Cork wallet" in result.output and "€35.00" in result.output
    missing = runner.invoke(app, ["templates", "preview", "welcome", "--customer", "nobody"])
    assert isinstance(missing.exception, NotFound)


def test_copy_then_validate_an_edited_template(home: Path) -> None:
    result = runner.invoke(app, ["templates", "copy", "welcome"])
    assert result.exit_code == 0, result.output
    path = home / "templates" / "welcome.yaml"
    path.write_text(path.read_text().replace("{{ store.name }}", "{{ store.title }}", 1))
    check = runner.invoke(app, ["templates", "validate", "welcome"])
    assert isinstance(check.exception, InputError)
    assert "'store' has no field 'title'" in str(check.exception)
    ok = runner.invoke(app, ["templates", "validate", "win_back", "review_request"])
    assert ok.exit_code == 0 and "ok win_back" in ok.output
