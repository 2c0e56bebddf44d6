"""Stores shared by the simulator tests: generated once per session, loaded into DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wayline.events.simulator import SimulatedStore, StoreConfig, simulate_store
from wayline.storage.eventstore import EventStore

# Big enough for every problem to show clearly (and a clean store to be flat) at ~200 k events.
CUSTOMERS = 10_000


@pytest.fixture(scope="session")
def problem_store() -> SimulatedStore:
    return simulate_store(StoreConfig(seed=11, customers=CUSTOMERS))


@pytest.fixture(scope="session")
def clean_store() -> SimulatedStore:
    return simulate_store(StoreConfig(seed=12, customers=CUSTOMERS, problems=frozenset()))


def _loaded(tmp: Path, sim: SimulatedStore) -> Iterator[EventStore]:
    # Loaded raw (no identity resolution): the problem metrics need user_id/session_id only.
    with EventStore(tmp / "events.duckdb") as store:
        store.append_arrow(sim.events)
        yield store


@pytest.fixture(scope="session")
def problem_db(
    tmp_path_factory: pytest.TempPathFactory, problem_store: SimulatedStore
) -> Iterator[EventStore]:
    yield from _loaded(tmp_path_factory.mktemp("problem"), problem_store)


@pytest.fixture(scope="session")
def clean_db(
    tmp_path_factory: pytest.TempPathFactory, clean_store: SimulatedStore
) -> Iterator[EventStore]:
    yield from _loaded(tmp_path_factory.mktemp("clean"), clean_store)
