from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from wayline.events.normalize import normalize
from wayline.storage.eventstore import EventStore, rows_to_arrow

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


def test_rows_to_arrow_takes_any_iterable_and_json_as_objects_or_text() -> None:
    base = normalize(
        {"type": "track", "event": "e", "userId": "u", "messageId": "m"},
        workspace_id="w",
        received_at=NOW,
    )
    rows = [
        dict(base, properties={"price": Decimal("1.50"), "tags": ["a"]}),
        dict(base, properties='{"already": "text"}', traits=None),
    ]
    table = rows_to_arrow(r for r in rows)  # a generator, as a caller may pass
    assert table.num_rows == 2
    assert table.column("properties").to_pylist() == [
        '{"price":"1.50","tags":["a"]}',
        '{"already": "text"}',
    ]
    assert table.column("traits").to_pylist()[1] is None
    assert table.column("user_id").to_pylist() == ["u", "u"]
