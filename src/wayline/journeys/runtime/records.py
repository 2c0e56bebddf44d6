"""Step records and their counts, written together in the transaction that decided them.

Each batch appends its records to ``journey_step_records`` and adds them to the per-step
counters of ``journey_step_counts`` (what the stats read) in the same transaction, so the
counters always equal the grouped records. Records travel as tuples in :data:`COLUMNS` order,
not dicts: five records per transition made building a dict per record, then reading it back
column by column, about a tenth of the runtime's CPU (measured on SQLite).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from enum import StrEnum
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from wayline.journeys.engine import RecordKind, Status, StepRecord
from wayline.journeys.runtime.bulk import insert_rows
from wayline.storage.journey_models import StepCountRow, StepRecordRow

COLUMNS = (
    "workspace_id", "journey_id", "version", "instance_id", "person_id", "kind", "step_id",
    "step_type", "outcome", "branch", "at",
)  # fmt: skip
"""A record row's columns, in the order of the tuples :func:`write_records` takes."""

Row = tuple[Any, ...]

#: The counters' key within a record row: workspace, journey, version, kind, step, outcome,
#: branch.
_COUNT_KEY = itemgetter(0, 1, 2, 5, 6, 8, 9)
_COUNT_COLUMNS = ("workspace_id", "journey_id", "version", "kind", "step_id", "outcome", "branch")


#: Enum members as their plain text, for the drivers. SQLite's driver binds a ``str`` subclass
#: through its adaptation protocol (a failed ``__conform__`` lookup per value): 1.1 µs against
#: 0.23 for a plain ``str`` (measured), and a customer's records and instance rows bind a dozen.
#: A dict lookup, not ``.value`` (a descriptor call per member).
TEXT: dict[StrEnum, str] = {m: m.value for e in (RecordKind, Status) for m in e}


def record_row(workspace_id: str, r: StepRecord) -> Row:
    """The engine's record as a row of ``journey_step_records`` (:data:`COLUMNS` order)."""
    return (
        workspace_id, r.journey_id, r.version, r.instance_id, r.person_id, TEXT[r.kind],
        r.step_id, r.step_type, r.outcome, r.branch, r.at,
    )  # fmt: skip


def write_records(conn: Connection, rows: Sequence[Row], *, postgres: bool) -> None:
    """Insert record rows and add them to ``journey_step_counts``.

    The counters are one upsert per transaction, its rows in key order: concurrent workers
    adding to the same counters then lock them in the same order and queue instead of
    deadlocking. Absent values count under ``''`` (see :class:`StepCountRow`).
    """
    if not rows:
        return
    insert_rows(conn, StepRecordRow.__table__, rows, names=COLUMNS, postgres=postgres)
    counts: Counter[tuple[Any, ...]] = Counter(map(_COUNT_KEY, rows))
    totals: Counter[tuple[Any, ...]] = Counter()
    for (w, j, v, k, s, o, b), n in counts.items():
        totals[(w, j, v, str(k), s or "", o or "", b or "")] += n
    insert_rows(
        conn, StepCountRow.__table__, [(*key, n) for key, n in sorted(totals.items())],
        names=(*_COUNT_COLUMNS, "n"), postgres=postgres,
        conflict=[c.name for c in StepCountRow.__table__.primary_key], add="n",
    )  # fmt: skip
