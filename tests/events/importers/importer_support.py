"""Helpers of the importer tests (fixtures are in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wayline.storage.eventstore import EventStore

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def rows(store: EventStore, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Query results as dicts (timestamps as text: DuckDB needs pytz to hand out TIMESTAMPTZ)."""
    cur = store.con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


EVENT_VIEW = """
SELECT message_id, type, event, user_id, anonymous_id, person_id,
    strftime("timestamp", '%Y-%m-%dT%H:%M:%S.%f') AS ts, session_id, device_type, os, channel,
    country, page_path, revenue, currency, properties, traits, context, source
FROM events
"""
