"""Loading a simulated store: replaces the previous demo, keeps other data, resolves identities."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from wayline.events.normalize import normalize
from wayline.events.simulator import SimulatedStore, StoreConfig, load_store, simulate_store
from wayline.storage.eventstore import EventStore


@pytest.fixture(scope="module")
def small() -> SimulatedStore:
    return simulate_store(StoreConfig(seed=21, customers=600))


def test_load_resolves_every_customer_to_one_person(tmp_path: Path, small: SimulatedStore) -> None:
    with EventStore(tmp_path / "e.duckdb") as store:
        assert load_store(store, small) == small.num_events
        assert store.count("default") == small.num_events
        # Before resolution an unidentified visitor's rows carry the anonymous id; after it,
        # each customer — browsing anonymously on one or two devices, then identified — is one
        # person, named by the user id once they identified.
        persons = store.con.execute("SELECT count(DISTINCT person_id) FROM events").fetchone()
        assert persons == (small.config.customers,)
        leftovers = store.con.execute(
            """SELECT count(*) FROM events e
               WHERE anonymous_id IN (SELECT anonymous_id FROM events WHERE user_id IS NOT NULL)
               AND NOT starts_with(person_id, 'cus_')"""
        ).fetchone()
        assert leftovers == (0,)
        second_device = store.con.execute(
            """SELECT count(DISTINCT anonymous_id) - count(DISTINCT person_id) FROM events
               WHERE person_id LIKE 'cus_%' AND anonymous_id IS NOT NULL"""
        ).fetchone()
        assert second_device is not None and second_device[0] > 0  # some shop on two devices


def test_reload_replaces_demo_events_only(tmp_path: Path, small: SimulatedStore) -> None:
    own = normalize(
        {"type": "track", "event": "Signed Up", "userId": "real-1", "messageId": "real-m1"},
        workspace_id="default",
        received_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    with EventStore(tmp_path / "e.duckdb") as store:
        store.append_rows([own])
        load_store(store, small)
        other = simulate_store(StoreConfig(seed=22, customers=300))
        load_store(store, other)
        assert store.count("default") == other.num_events + 1
        mine = store.con.execute("SELECT count(*) FROM events WHERE source = 'api'").fetchone()
        assert mine == (1,)


def test_failed_load_leaves_the_previous_demo(tmp_path: Path, small: SimulatedStore) -> None:
    broken = simulate_store(StoreConfig(seed=23, customers=300))

    def failing(chunk_rows: int = 0) -> Iterator[pa.Table]:
        yield from broken.events.slice(0, 100).to_batches()
        raise RuntimeError("disk full")

    object.__setattr__(broken, "batches", failing)
    with EventStore(tmp_path / "e.duckdb") as store:
        load_store(store, small)
        with pytest.raises(RuntimeError, match="disk full"):
            load_store(store, broken)
        assert store.count("default") == small.num_events


def test_other_workspace(tmp_path: Path) -> None:
    sim = simulate_store(StoreConfig(seed=2, customers=100, workspace_id="shop-b"))
    with EventStore(tmp_path / "e.duckdb") as store:
        load_store(store, sim)
        assert store.count("shop-b") == sim.num_events
        assert store.count("default") == 0


def test_public_api() -> None:
    import wayline.events.simulator as simulator

    assert sorted(simulator.__all__) == [
        "ALL_PROBLEMS",
        "InjectedProblem",
        "Measurement",
        "ProblemKind",
        "ProblemSpec",
        "Rate",
        "Rates",
        "SimulatedStore",
        "StoreConfig",
        "StoreFacts",
        "load_store",
        "simulate_store",
    ]
    assert all(hasattr(simulator, name) for name in simulator.__all__)
