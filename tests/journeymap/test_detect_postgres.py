"""The detectors' SQL runs on PostgreSQL too, and finds exactly what it finds on DuckDB."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from wayline.analytics.backend import DuckDBBackend, PostgresBackend
from wayline.events.simulator import StoreConfig, load_store, simulate_store
from wayline.journeymap.painpoints import DetectionContext, PainPoint, detect_pain_points
from wayline.journeymap.stages import default_mapping
from wayline.storage.eventstore import EventStore
from wayline.storage.pg_events import copy_from_duckdb, create_events_table, psycopg_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def summary(points: list[PainPoint]) -> list[tuple[object, ...]]:
    return [
        (
            p.kind,
            p.step_events,
            p.evidence.segment,
            round(p.evidence.value, 9),
            round(p.evidence.baseline, 9),
            p.evidence.revenue_at_stake,
            p.evidence.affected_customers,
            p.evidence.since,
            p.evidence.until,
            p.severity,
        )
        for p in points
    ]


def test_postgres_finds_what_duckdb_finds(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    cfg = StoreConfig(seed=21, customers=2500)
    sim = simulate_store(cfg)
    ctx = DetectionContext(
        cfg.workspace_id, cfg.start, cfg.start + timedelta(days=cfg.days), default_mapping()
    )
    with psycopg.connect(psycopg_url(postgres_url), autocommit=True) as conn:
        create_events_table(conn)
        with EventStore(tmp_path / "events.duckdb") as store:
            load_store(store, sim)
            copy_from_duckdb(store, conn)
            on_duckdb = detect_pain_points(DuckDBBackend(store.con), ctx)
        # Fresh tables have no statistics; without them the planner picks nested loops.
        conn.execute("ANALYZE events")
        on_postgres = detect_pain_points(PostgresBackend(conn), ctx)
    assert len(on_duckdb) >= 4
    assert summary(on_postgres) == summary(on_duckdb)
