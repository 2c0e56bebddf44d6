from datetime import UTC, datetime
from pathlib import Path

import pytest

from wayline.events.normalize import normalize
from wayline.storage.eventstore import EventStore

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_append_and_count(tmp_path: Path) -> None:
    rows = [
        normalize(
            {"type": "track", "event": "e", "userId": f"u{i}", "messageId": f"m{i}"},
            workspace_id="w",
            received_at=NOW,
        )
        for i in range(3)
    ]
    with EventStore(tmp_path / "e.duckdb") as store:
        assert store.append_rows(rows) == 3
        assert store.count("w") == 3
        assert store.count("other") == 0


def test_failed_append_leaves_nothing(tmp_path: Path) -> None:
    good = normalize(
        {"type": "track", "event": "e", "userId": "u", "messageId": "m"},
        workspace_id="w",
        received_at=NOW,
    )
    bad = dict(good, person_id=None)  # violates NOT NULL
    with EventStore(tmp_path / "e.duckdb") as store:
        with pytest.raises(Exception):  # noqa: B017 - Arrow or DuckDB refuses, either is fine
            store.append_rows([good, bad])
        assert store.count() == 0
