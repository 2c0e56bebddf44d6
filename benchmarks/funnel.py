"""Benchmark: an ordered 5-step funnel with a 7-day window over a large generated event log.

    .venv/bin/python benchmarks/funnel.py                          # 10 M events, 500 k customers
    .venv/bin/python benchmarks/funnel.py --events 1000000         # customers scale with events
    .venv/bin/python benchmarks/funnel.py --events 1000000 --events 10000000 --events 50000000

The log is generated with vectorised numpy — a Markov chain over store events, so that funnels
have structure (views lead to adds, adds to checkouts…), with visits days apart — and cached as a
DuckDB file under ``benchmarks/data/`` (git-ignored). Per size it prints the median of ``--runs``
runs of :func:`wayline.analytics.funnels.run_funnel`, next to the naive query run in the same
process on the same connection — one window-function pass ("first step-k event after this row",
``min() OVER (… RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)``) and a hash join per step to
follow the chain — as a ratio, checks that both give the same counts, and reports the peak memory
of a fresh process running only our funnel.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wayline.analytics.backend import DuckDBBackend
from wayline.analytics.funnels import FunnelQuery, FunnelStep, run_funnel
from wayline.events.schema import EVENT_COLUMNS
from wayline.storage.eventstore import create_events_table_sql

DATA = Path(__file__).parent / "data"
T0 = np.datetime64("2026-01-01T00:00:00", "us")
STEPS = (
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Payment Info Entered",
    "Order Completed",
)
WINDOW = timedelta(days=7)

NAMES = [
    "$page",
    "Products Searched",
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
    "Payment Info Entered",
    "Order Completed",
    "Product Removed",
    "Email Opened",
]
# Transition weights between the events above (rows: from, columns: to).
_W = np.array(
    [
        [4, 2, 6, 1, 1, 0, 0, 0, 0, 0],
        [1, 1, 7, 1, 0, 0, 0, 0, 0, 0],
        [3, 1, 5, 3, 1, 0, 0, 0, 0, 0],
        [1, 0, 3, 1, 4, 2, 0, 0, 1, 0],
        [1, 0, 2, 0, 0, 4, 0, 0, 1, 0],
        [1, 0, 1, 0, 1, 0, 5, 0, 0, 0],
        [0, 0, 0, 0, 1, 0, 0, 6, 0, 0],
        [4, 0, 2, 0, 0, 0, 0, 0, 0, 1],
        [1, 0, 2, 0, 2, 0, 0, 0, 0, 0],
        [3, 0, 4, 0, 0, 0, 0, 0, 0, 0],
    ],
    dtype=float,
)
_CUM = np.cumsum(_W / _W.sum(axis=1, keepdims=True), axis=1)


def generate(events: int, customers: int, seed: int = 11) -> pa.Table:
    """About ``events`` event rows of ``customers`` people (Arrow, the events-table columns)."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(2.0, customers) + 1.0
    # Customers sorted by event count, most first: at chain position k the customers still
    # going are a prefix, so each position costs only its live customers (O(events) in all).
    counts = np.sort(np.maximum(1, np.round(weights / weights.sum() * events)).astype(np.int64))[
        ::-1
    ]
    n = int(counts.sum())
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    state = np.empty(n, dtype=np.int8)
    current = rng.choice(len(NAMES), size=customers, p=[0.5, 0.15, 0.25, 0, 0, 0, 0, 0, 0, 0.1])
    state[first] = current
    ascending = counts[::-1]
    for k in range(1, int(counts[0])):  # the chain, one position at a time for everyone
        live = customers - int(np.searchsorted(ascending, k, side="right"))
        u = rng.random(live)
        nxt = np.minimum((u[:, None] > _CUM[current[:live]]).sum(axis=1), len(NAMES) - 1)
        state[first[:live] + k] = nxt
        current[:live] = nxt
    start = rng.integers(0, 90 * 86_400, customers).astype(np.int64) * 1_000_000
    gaps = (rng.exponential(90.0, n) * 1_000_000).astype(np.int64)
    new_visit = rng.random(n) < 0.1
    gaps[new_visit] = (rng.exponential(2 * 86_400.0, int(new_visit.sum())) * 1e6).astype(np.int64)
    gaps[first] = 0
    offsets = np.cumsum(gaps)
    offsets -= np.repeat(offsets[first], counts)
    person = np.repeat(np.arange(customers, dtype=np.int64), counts)
    ts = T0 + (np.repeat(start, counts) + offsets).astype("timedelta64[us]")
    order = np.argsort(ts, kind="stable")  # a store's log arrives in time order
    person, state, ts = person[order], state[order], ts[order]
    pid = pc.binary_join_element_wise(
        pa.array(np.full(n, "c", dtype=object)), pa.array(person).cast(pa.string()), ""
    )
    ts_arrow = pa.array(ts, type=pa.timestamp("us", tz="UTC"))
    null = pa.nulls(n, pa.string())
    names = pa.DictionaryArray.from_arrays(pa.array(state.astype(np.int32)), pa.array(NAMES))
    return pa.table(
        {
            "workspace_id": pa.array(np.full(n, "default", dtype=object)),
            "message_id": pa.array(np.arange(n)).cast(pa.string()),
            "type": pa.array(np.where(state == 0, "page", "track").astype(object)),
            "event": names.cast(pa.string()),
            "user_id": pid,
            "anonymous_id": null,
            "person_id": pid,
            "timestamp": ts_arrow,
            "received_at": ts_arrow,
            "session_id": null,
            "device_type": null,
            "os": null,
            "channel": null,
            "country": null,
            "page_path": null,
            "revenue": pa.nulls(n, pa.decimal128(18, 2)),
            "currency": null,
            "properties": null,
            "traits": null,
            "context": null,
            "source": pa.array(np.full(n, "bench", dtype=object)),
        }
    )


def store(events: int) -> Path:
    """The cached DuckDB file of that size (customers = events / 20), generated on first use."""
    customers = max(1, events // 20)
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"funnel-v2-{events}-{customers}.duckdb"
    if path.exists():
        return path
    t = time.perf_counter()
    table = generate(events, customers)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    con.execute(create_events_table_sql())
    con.register("_gen", table)
    con.execute(f"INSERT INTO events SELECT {', '.join(EVENT_COLUMNS)} FROM _gen")
    con.close()
    tmp.rename(path)
    print(f"generated {table.num_rows:,} events in {time.perf_counter() - t:.1f} s → {path.name}")
    return path


def naive_sql(steps: tuple[str, ...], window: timedelta) -> str:
    """The straightforward window-function funnel: for every step event, the first step-k event
    strictly after it (one window pass), then follow each attempt's chain with hash joins."""
    n = len(steps)
    w = window // timedelta(microseconds=1)
    names = ", ".join(f"'{s}'" for s in steps)
    frame = (
        "OVER (PARTITION BY person_id ORDER BY t RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
    )
    nexts = ", ".join(
        f"min(CASE WHEN event = '{steps[k]}' THEN t END) {frame} AS n{k + 1}" for k in range(1, n)
    )
    ctes = [
        f"ev AS (SELECT person_id, epoch_us(timestamp) AS t, event FROM events "
        f"WHERE workspace_id = 'default' AND event IN ({names}))",
        f"nx AS (SELECT person_id, t, event, {nexts} FROM ev)",
        f"c2 AS (SELECT person_id, t AS s, n2 AS t2 FROM nx WHERE event = '{steps[0]}')",
    ]
    for k in range(3, n + 1):
        ctes.append(
            f"c{k} AS (SELECT c.*, nx.n{k} AS t{k} FROM c{k - 1} AS c LEFT JOIN "
            f"(SELECT DISTINCT person_id, t, n{k} FROM nx WHERE event = '{steps[k - 2]}') AS nx "
            f"ON nx.person_id = c.person_id AND nx.t = c.t{k - 1})"
        )
    reach = " ".join(f"WHEN t{k} IS NOT NULL AND t{k} - s <= {w} THEN {k}" for k in range(n, 1, -1))
    counts = ", ".join(f"count(*) FILTER (WHERE reach >= {k})" for k in range(1, n + 1))
    return (
        "WITH " + ",\n".join(ctes) + f"\nSELECT {counts} FROM (SELECT person_id, "
        f"max(CASE {reach} ELSE 1 END) AS reach FROM c{n} GROUP BY person_id)"
    )


def query() -> FunnelQuery:
    return FunnelQuery(steps=tuple(FunnelStep((s,)) for s in STEPS), window=WINDOW)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """Median wall time, median CPU time (all threads; steadier on a shared machine), result."""
    times, cpus, result = [], [], None
    for _ in range(runs):
        t, c = time.perf_counter(), _cpu()
        result = fn()
        times.append(time.perf_counter() - t)
        cpus.append(_cpu() - c)
    return statistics.median(times), statistics.median(cpus), result


def connect(path: Path, threads: int | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {threads}")
    return con


def peak_memory(path: Path, threads: int | None, runs: int) -> float:
    """Peak RSS (MB) of a fresh process that opens the file and runs our funnel ``runs`` times."""
    out = subprocess.run(
        [sys.executable, __file__, "--_child", str(path), "--runs", str(runs)]
        + (["--threads", str(threads)] if threads else []),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout)["peak_mb"])


def child(path: Path, threads: int | None, runs: int) -> None:
    backend = DuckDBBackend(connect(path, threads))
    for _ in range(runs):
        run_funnel(backend, query())
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": peak_kb / 1024}))


def run(events: int, runs: int, threads: int | None, naive: bool) -> dict[str, Any]:
    path = store(events)
    con = connect(path, threads)
    backend = DuckDBBackend(con)
    n = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    customers = con.execute("SELECT count(DISTINCT person_id) FROM events").fetchone()[0]  # type: ignore[index]
    run_funnel(backend, query())  # warm the file cache
    ours, ours_cpu, result = timed(lambda: run_funnel(backend, query()), runs)
    users = [s.users for s in result.steps]
    row: dict[str, Any] = {
        "events": n,
        "customers": customers,
        "ours_s": ours,
        "ours_cpu": ours_cpu,
        "users": users,
    }
    if naive:
        base, base_cpu, base_rows = timed(
            lambda: con.execute(naive_sql(STEPS, WINDOW)).fetchall(), max(1, min(runs, 3))
        )
        row["naive_s"] = base
        row["naive_cpu"] = base_cpu
        row["ratio"] = base / ours
        row["same_counts"] = list(base_rows[0]) == users
    row["peak_mb"] = peak_memory(path, threads, runs=2)
    con.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, action="append", help="log size (repeatable)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive query")
    parser.add_argument(
        "--write-results", action="store_true", help="rewrite the funnel section of RESULTS.md"
    )
    parser.add_argument("--_child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        child(args._child, args.threads, args.runs)
        return
    sizes = args.events or [10_000_000]
    print(f"ordered funnel, {len(STEPS)} steps, window {WINDOW.days} d: {' → '.join(STEPS)}")
    print(
        f"{'events':>12} {'customers':>10} {'ours s':>7} {'cpu s':>6} {'naive s':>8} {'cpu s':>6} "
        f"{'ratio':>6} {'peak MB':>8}  users per step"
    )
    rows = []
    for size in sizes:
        r = run(size, args.runs, args.threads, not args.no_naive)
        rows.append(r)
        if "naive_s" in r:
            naive = f"{r['naive_s']:8.3f} {r['naive_cpu']:6.2f} {r['ratio']:5.1f}x"
        else:
            naive = f"{'-':>8} {'-':>6} {'-':>6}"
        check = "" if r.get("same_counts", True) else "  (MISMATCH with naive!)"
        print(
            f"{r['events']:>12,} {r['customers']:>10,} {r['ours_s']:7.3f} {r['ours_cpu']:6.2f} "
            f"{naive} {r['peak_mb']:8.0f}  {r['users']}{check}"
        )
    print("wall = median elapsed seconds; cpu = median CPU seconds of all threads (the machine")
    print("is shared: wall times grow with other load, CPU times much less).")
    if args.write_results:
        write_results(rows, args.runs)


def write_results(rows: list[dict[str, Any]], runs: int) -> None:
    """The funnel section of RESULTS.md: one row per size, and whether the goal is met."""
    from results import write_section

    lines = [
        "## Funnels (issue 3)",
        f"Ordered {len(STEPS)}-step funnel, {WINDOW.days}-day window "
        f"(`benchmarks/funnel.py`), median of {runs} runs; baseline: the naive window-function "
        "query on the same connection; ratio = baseline / ours (higher is better).",
        "",
        "| events | customers | ours (s) | ours CPU (s) | baseline (s) | ratio | peak MB | "
        "same counts |",
        "|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        base = f"{r['naive_s']:.2f}" if "naive_s" in r else "-"
        ratio = f"{r['ratio']:.1f}x" if "ratio" in r else "-"
        lines.append(
            f"| {r['events']:,} | {r['customers']:,} | {r['ours_s']:.2f} | {r['ours_cpu']:.2f} "
            f"| {base} | {ratio} | {r['peak_mb']:.0f} | {r.get('same_counts', '-')} |"
        )
    ten = [r for r in rows if 9_000_000 <= r["events"] <= 11_000_000]
    if ten:
        r = ten[0]
        met = r["ours_s"] < 1.0 and r["peak_mb"] < 2048
        lines += [
            "",
            f"Goal (10 M events: under 1 s median, under 2 GB peak): "
            f"{'met' if met else 'NOT met'} in this run ({r['ours_s']:.2f} s, "
            f"{r['peak_mb']:.0f} MB, on a shared machine).",
        ]
    write_section("funnel", "\n".join(lines))


if __name__ == "__main__":
    main()
