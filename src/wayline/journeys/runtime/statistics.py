"""PostgreSQL: the runtime's tables get statistics before its lookups need them.

PostgreSQL's planner picks an index by its statistics. A table it has never analysed (a fresh
install, the first minute of a burst, before autovacuum comes by) looks like a row or two to
it, every index on the right columns looks as good as any other, and it took the one that
walks a whole workspace per customer: 125 ms for a batch of 500 customers among 6,000
instances, where the right index takes 1 ms (measured with ``auto_explain``). So a worker
analyses each of these tables once it holds rows and has never been analysed — a catalogue
query every few seconds until all have statistics, then nothing: autovacuum keeps them fresh.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import text

from wayline.storage.db import Database

log = logging.getLogger(__name__)

TABLES = (
    "journey_instances", "journey_inputs", "journey_timers", "journey_outbox",
    "journey_step_records", "customer_profiles",
)  # fmt: skip


class Statistics:
    """Analyses the runtime's tables that have rows and no statistics (module docstring).

    Args:
        every: seconds between two looks at the catalogue.
    """

    def __init__(self, db: Database, *, every: float = 2.0) -> None:
        self.db = db
        self.every = every
        self._next = 0.0
        self._done = db.dialect != "postgresql"

    def check(self) -> None:
        if self._done or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.every
        with self.db.write() as conn:
            missing = conn.scalars(
                text(
                    "SELECT c.relname FROM pg_class c "
                    "WHERE c.oid = ANY(CAST(:tables AS regclass[])) AND c.reltuples < 0"
                ),
                {"tables": list(TABLES)},
            ).all()
            if not missing:
                self._done = True
                return
            # Never analysed, but is there anything to analyse yet? (``relpages`` is not kept
            # before the first analysis; the file's size is.)
            # In one order: two workers analysing at once queue instead of deadlocking (the
            # lock ANALYZE takes, held to the commit, conflicts with itself, not with writes).
            filled = [
                name
                for name in sorted(missing)
                if conn.scalar(text("SELECT pg_relation_size(CAST(:t AS regclass))"), {"t": name})
            ]
            for name in filled:
                conn.execute(text(f"ANALYZE {name}"))
        if filled:
            log.info("analysed %s (no statistics yet)", ", ".join(filled))
