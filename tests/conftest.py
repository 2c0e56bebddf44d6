"""Shared fixtures: data folders, and the real PostgreSQL when one is reachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["dashboard_fixtures"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data folder, set as WAYLINE_HOME for the test."""
    folder = tmp_path / "wayline-data"
    monkeypatch.setenv("WAYLINE_HOME", str(folder))
    monkeypatch.delenv("WAYLINE_DATABASE_URL", raising=False)
    return folder


def _postgres_url() -> str | None:
    return os.environ.get("WAYLINE_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema; skipped (with the reason) where none is reachable.

    Each test gets its own schema (through ``options=-csearch_path``), dropped afterwards.
    """
    base = _postgres_url()
    if not base:
        pytest.skip("WAYLINE_TEST_POSTGRES_URL is not set: no PostgreSQL to test against")
    import psycopg

    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {base} is unreachable: {exc}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    try:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
