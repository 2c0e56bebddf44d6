from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from journey_logs import T0, duckdb_backend, ev, event_logs, postgres_backend
from paths_reference import sessions as reference_sessions

from wayline.analytics.backend import Backend
from wayline.analytics.sessions import sessionize_sql


def _keys(backend: Backend, gap: timedelta = timedelta(minutes=30)) -> dict[str, str]:
    sql = f"SELECT message_id, session_key FROM ({sessionize_sql('events', gap=gap)}) AS s"
    return dict(backend.fetch(sql))


def test_explicit_session_ids_win_and_gaps_split_the_rest() -> None:
    rows = [
        ev("p", "a", T0, message_id="1"),
        ev("p", "b", T0 + timedelta(minutes=30), message_id="2"),  # exactly 30 min: same session
        ev("p", "c", T0 + timedelta(minutes=61), message_id="3"),  # 31 min later: new session
        ev("p", "d", T0 + timedelta(minutes=62), session_id="x", message_id="4"),
        ev("q", "a", T0 + timedelta(minutes=61), message_id="5"),  # another person: own count
    ]
    assert _keys(duckdb_backend(rows)) == {
        "1": "i:1",
        "2": "i:1",
        "3": "i:2",
        "4": "s:x",
        "5": "i:1",
    }


def test_custom_gap() -> None:
    rows = [
        ev("p", "a", T0, message_id="1"),
        ev("p", "b", T0 + timedelta(minutes=6), message_id="2"),
    ]
    assert _keys(duckdb_backend(rows), timedelta(minutes=5)) == {"1": "i:1", "2": "i:2"}


def test_gap_must_be_positive() -> None:
    with pytest.raises(ValueError):
        sessionize_sql("events", gap=timedelta(0))


@settings(max_examples=60, deadline=None)
@given(event_logs())
def test_matches_reference(rows: list[dict[str, Any]]) -> None:
    assert _keys(duckdb_backend(rows)) == reference_sessions(rows)


@pytest.mark.postgres
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=event_logs())
def test_postgres_matches_reference(postgres_url: str, rows: list[dict[str, Any]]) -> None:
    with postgres_backend(postgres_url) as (backend, load):
        load(rows)
        assert _keys(backend) == reference_sessions(rows)
