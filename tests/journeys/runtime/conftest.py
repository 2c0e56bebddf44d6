"""The runtime tests' operational store: SQLite, and PostgreSQL where one is configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_support import T0

from wayline.storage.db import Database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url, clock=lambda: T0)
    database.ensure_default_workspace()
    yield database
    database.close()
