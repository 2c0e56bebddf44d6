"""The mover's CPU per event: inbox requests (SQLite) → DuckDB ``events``, against a bare append.

    .venv/bin/python benchmarks/mover.py [--requests 500] [--batch 100] [--profile]

The inbox of a fresh SQLite store (as ``wayline serve`` opens it) is filled with ``--requests``
requests of ``--batch`` events each, the events of ``benchmarks/ingest_http.py`` (track calls of
known visitors, analytics.js-like context; one request in ten also identifies its users), and
``Mover.drain()`` moves them into a fresh DuckDB file. Reported: process CPU per event.

Baseline, in the same process on the same machine: the same events, already in an Arrow table of
the events schema, appended to another fresh DuckDB file in batches of the mover's size (one
``INSERT … SELECT`` per batch): what storing the rows costs with no inbox, no JSON, no
normalising, no dedup and no identities. The ratio mover / baseline is printed.

Goal (issue 2): the mover at <= 15 µs of CPU per event, so that one core keeps up with the
API's 50,000 events/s.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest_http import CONTEXT  # the same events as the HTTP benchmark's
from wayline.config import Settings
from wayline.events.normalize import normalize
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore, rows_to_arrow
from wayline.storage.mover import Mover

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def request(n: int, size: int) -> list[dict[str, Any]]:
    """The messages of request ``n``: the ingest benchmark's events, with ids of their own."""
    messages: list[dict[str, Any]] = [
        {
            "type": "track",
            "event": "Product Viewed" if i % 4 else "Added to Cart",
            "userId": f"user-{n % 50}-{i}",
            "anonymousId": f"anon-{n % 50}-{i}",
            "messageId": f"r{n}-{i}",
            "timestamp": "2026-11-01T12:00:00.000Z",
            "properties": {"product_id": f"p{i}", "price": 39.9, "currency": "EUR"},
            "context": CONTEXT,
        }
        for i in range(size)
    ]
    if n % 10 == 0:  # some identify calls, so profiles are updated as in production
        for i in range(0, size, 10):
            messages[i] = {
                **messages[i],
                "type": "identify",
                "traits": {"email": f"user-{n % 50}-{i}@example.com", "firstName": "Ana"},
            }
            del messages[i]["event"]
    return messages


def fill(db: Database, requests: int, size: int) -> list[list[dict[str, Any]]]:
    batches = [request(n, size) for n in range(requests)]
    for n, batch in enumerate(batches):
        db.accept("default", batch, START + timedelta(milliseconds=n))
    return batches


def run_mover(
    home: Path, requests: int, size: int, *, profile: bool, keep_open: bool
) -> tuple[float, int]:
    with Database.open(Settings(home=home)) as db:
        db.ensure_default_workspace()
        fill(db, requests, size)
        path = home / "events.duckdb"
        EventStore(path).close()
        with contextlib.ExitStack() as stack:
            # As ``wayline serve`` runs it: the file opened for each batch (other processes
            # read it in between), unless --keep-open.
            store = path if not keep_open else stack.enter_context(EventStore(path))
            mover = Mover(db, store)
            mover.catch_up_identities()
            profiler = cProfile.Profile() if profile else None
            cpu = time.process_time()
            if profiler:
                profiler.enable()
            moved = mover.drain()
            if profiler:
                profiler.disable()
            cpu = time.process_time() - cpu
        with EventStore(path) as reopened:
            stored = reopened.count()
    if stored != requests * size or moved != stored:
        raise SystemExit(f"moved {moved}, stored {stored}, expected {requests * size}")
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
    return cpu, stored


def run_baseline(home: Path, requests: int, size: int, batch_size: int) -> tuple[float, int]:
    rows = [
        normalize(m, workspace_id="default", received_at=START + timedelta(milliseconds=n))
        for n in range(requests)
        for m in request(n, size)
    ]
    tables = [rows_to_arrow(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    with EventStore(home / "baseline.duckdb") as store:
        cpu = time.process_time()
        for table in tables:
            store.append_arrow(table)
        cpu = time.process_time() - cpu
        stored = store.count()
    return cpu, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument(
        "--keep-open", action="store_true", help="one open store, not one open per batch"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one mover run")
    args = parser.parse_args()
    batch_size = Mover.__init__.__kwdefaults__["batch_size"]  # type: ignore[index]
    mover_us, base_us = [], []
    for _ in range(1 if args.profile else args.rounds):
        with tempfile.TemporaryDirectory(prefix="wayline-mover-") as tmp:
            cpu, n = run_mover(
                Path(tmp), args.requests, args.batch, profile=args.profile, keep_open=args.keep_open
            )
            mover_us.append(cpu / n * 1e6)
            cpu, n = run_baseline(Path(tmp), args.requests, args.batch, batch_size)
            base_us.append(cpu / n * 1e6)
    mover, base = min(mover_us), min(base_us)
    out = sys.stdout.write
    out(
        f"{args.requests * args.batch:,} events in requests of {args.batch}, batches of "
        f"{batch_size}\n"
    )
    out(f"mover:    {mover:6.1f} µs CPU per event ({', '.join(f'{x:.1f}' for x in mover_us)})\n")
    out(f"baseline: {base:6.1f} µs CPU per event (bare DuckDB append of the same rows)\n")
    out(
        f"ratio:    {mover / base:6.1f} x baseline; goal <= 15 µs per event: "
        f"{'met' if mover <= 15 else 'not met'}\n"
    )


if __name__ == "__main__":
    main()
