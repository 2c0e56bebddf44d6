"""Fixtures of the importer tests: a fresh event store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wayline.storage.eventstore import EventStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.duckdb") as s:
        yield s
