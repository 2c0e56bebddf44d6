"""Loading a simulated store into the DuckDB event store (the imperative shell of the simulator).

A load replaces the workspace's previous sample-store events (``source = 'simulator'``) with the
new ones in one transaction — a failure leaves the previous demo data in place — then resolves
identities, so each customer's anonymous browsing before their ``$identify`` becomes theirs.
Events from other sources in the workspace are left alone.
"""

from __future__ import annotations

from collections.abc import Callable

from wayline.events.schema import EVENT_ARROW_SCHEMA, EVENT_COLUMNS
from wayline.events.simulator.materialize import SOURCE
from wayline.events.simulator.store import SimulatedStore
from wayline.storage.eventstore import EventStore
from wayline.storage.identity import resolve_identities


def write_events(
    store: EventStore, sim: SimulatedStore, *, on_rows: Callable[[int], None] | None = None
) -> int:
    """Replace the workspace's sample-store events with ``sim``'s, in one transaction.

    The rows are built and inserted chunk by chunk (``SimulatedStore.batches``), so a large
    store is never whole in memory; ``on_rows`` is told each chunk's size (for a progress bar).
    Returns the rows written. Identities are *not* resolved: see :func:`load_store`.
    """
    workspace_id = sim.config.workspace_id
    con = store.con
    rows = 0
    con.execute("BEGIN")
    try:
        con.execute(
            "DELETE FROM events WHERE workspace_id = ? AND source = ?", [workspace_id, SOURCE]
        )
        for batch in sim.batches():
            table = batch.select(list(EVENT_COLUMNS)).cast(EVENT_ARROW_SCHEMA)
            con.register("_simulated", table)
            try:
                con.execute("INSERT INTO events SELECT * FROM _simulated")
            finally:
                con.unregister("_simulated")
            rows += table.num_rows
            if on_rows is not None:
                on_rows(table.num_rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return rows


def load_store(store: EventStore, sim: SimulatedStore) -> int:
    """Replace the workspace's sample-store events with ``sim``'s and resolve identities.

    Returns the rows loaded.
    """
    rows = write_events(store, sim)
    resolve_identities(store, sim.config.workspace_id)
    return rows
