"""Benchmark: a page of journey messages with their delivery history, as the table grows.

    .venv/bin/python benchmarks/messages.py                  # 10,000 and 100,000 customers
    .venv/bin/python benchmarks/messages.py --customers 300000 --no-write

Each customer has been through a two-message journey: 2 outbox rows and 10 step records, as
the runtime writes them (``benchmarks/journeys_runtime.py``'s journey), written straight into a
fresh SQLite store. Measured with :func:`wayline.api.rest.messages.messages_page` (what
``GET /api/v1/messages`` and a customer's timeline call), the median of ``--runs``:

- **a customer's messages** (``?customer=…``): the timeline's query;
- **the newest page** of the whole workspace (50 messages).

The baseline, in the same process and on the same rows: the step records indexed by (workspace,
journey) only, as before migration 0007, when a page's history read every record of the
workspace. The section ``messages`` of ``benchmarks/RESULTS.md`` is rewritten with the figures.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from results import write_section
from wayline.api.rest.messages import messages_page
from wayline.storage.db import Database

T0 = datetime(2026, 12, 1, tzinfo=UTC)
_STAMP = "%Y-%m-%d %H:%M:%S.%f"
_RECORDS = (  # kind, step, step type, outcome, branch: the runtime's ten per customer
    ("entered", None, None, None, None), ("reached", "first", "send", None, None),
    ("left", "first", "send", "queued", None), ("sent", "first", "send", "email", "email"),
    ("reached", "wait", "delay", None, None), ("left", "wait", "delay", "elapsed", None),
    ("reached", "second", "send", None, None), ("left", "second", "send", "queued", None),
    ("sent", "second", "send", "email", "email"), ("completed", "second", "send", "end", None),
)  # fmt: skip


def fill(path: Path, customers: int) -> None:
    """``customers`` through the journey, a second apart (oldest first, as the runtime writes)."""
    Database(f"sqlite:///{path}").close()  # the schema, by the migrations
    conn = sqlite3.connect(path)
    for start in range(0, customers, 10_000):
        outbox, records = [], []
        for c in range(start, min(customers, start + 10_000)):
            at = (T0 + timedelta(seconds=c)).strftime(_STAMP)
            instance = f"bench:c{c}:1"
            for step in ("first", "second"):
                key = f"{instance}/{step}/1"
                payload = f'{{"template": "welcome", "message_id": "{key}"}}'
                outbox.append(
                    ("default", key, "send", "email", instance, "bench", 1, f"c{c}", step,
                     payload, "sent", at, None, 1, "email", at, at)
                )  # fmt: skip
            records += [("default", "bench", 1, instance, f"c{c}", *r, at) for r in _RECORDS]
        conn.executemany(
            "INSERT INTO journey_outbox (workspace_id, idempotency_key, kind, channel, "
            "instance_id, journey_id, version, person_id, step_id, payload, status, due_at, "
            "locked_until, attempts, outcome, created_at, done_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            outbox,
        )
        conn.executemany(
            "INSERT INTO journey_step_records (workspace_id, journey_id, version, instance_id, "
            "person_id, kind, step_id, step_type, outcome, branch, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            records,
        )
        conn.commit()
    conn.close()


def old_index(path: Path) -> None:
    """The step records' index before migration 0007 (the baseline)."""
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX ix_journey_step_records_instance")
    conn.execute(
        "CREATE INDEX ix_journey_step_records_journey ON journey_step_records "
        "(workspace_id, journey_id)"
    )
    conn.close()


def median_ms(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(path: Path, customers: int, runs: int) -> tuple[float, float]:
    """(a customer's messages, the newest page) in ms."""
    db = Database(f"sqlite:///{path}", migrate=False)
    people = [f"c{customers * i // runs}" for i in range(runs)]  # old and new customers
    turn = iter(people)
    try:
        customer = median_ms(
            lambda: messages_page(db, "default", limit=50, offset=0, person_id=next(turn)), runs
        )
        page = median_ms(lambda: messages_page(db, "default", limit=50, offset=0), runs)
    finally:
        db.close()
    return customer, page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, action="append")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for customers in args.customers or [10_000, 100_000]:
            path = Path(folder) / f"messages-{customers}.sqlite3"
            fill(path, customers)
            customer, page = measure(path, customers, args.runs)
            old_index(path)
            base_customer, base_page = measure(path, customers, args.runs)
            path.unlink()
            line = (
                f"| {customers:,} | {customers * 10:,} | {customer:,.1f} ms | "
                f"{base_customer:,.1f} ms | {customer / base_customer:.3f} | {page:,.1f} ms | "
                f"{base_page:,.1f} ms | {page / base_page:.3f} |"
            )
            print(line, flush=True)
            rows.append(line)
    if not args.no_write:
        write_section(
            "messages",
            f"""
## Messages and their delivery history
`benchmarks/messages.py`: a page of journey messages with each one's delivery history
(`GET /api/v1/messages`, and a customer's timeline), on SQLite, each customer with 2 messages
and 10 step records. Median of {args.runs} requests, server side, in-process. Baseline in the
same process on the same rows: the step records indexed by (workspace, journey) only, as
before migration 0007.

| customers | step records | one customer's | baseline | ratio | newest page | baseline | ratio |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

A customer's messages now take the same time whatever the table's size. The newest page still
grows with the table: it counts the workspace's messages and sorts them by time.
""",
        )


if __name__ == "__main__":
    main()
