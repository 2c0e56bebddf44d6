"""Benchmark: paths (transitions, Sankey, top paths) over a large generated event log.

    .venv/bin/python benchmarks/paths.py                      # 10 M events, 500 k customers
    .venv/bin/python benchmarks/paths.py --events 1000000     # customers scale with events
    .venv/bin/python benchmarks/paths.py --events 1000000 --events 10000000   # growth table

The log is generated with vectorised numpy (a Markov chain over store events, so paths have
structure; sessions with gaps; page views with paths) and cached as a DuckDB file under
``benchmarks/data/`` (git-ignored). Each query runs ``--runs`` times and the median is printed,
next to a baseline run in the same process: the naive transition count any analyst would write
first, ``lead()`` over ``PARTITION BY person_id ORDER BY timestamp`` and a ``GROUP BY``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from wayline.analytics.backend import DuckDBBackend
from wayline.analytics.paths import GroupRule, PathsQuery, paths, transitions
from wayline.events.schema import EVENT_COLUMNS
from wayline.storage.eventstore import create_events_table_sql

DATA = Path(__file__).parent / "data"
T0 = np.datetime64("2026-01-01T00:00:00", "us")

STATES = [
    "$page",  # home / listing pages
    "Products Searched",
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
    "Payment Info Entered",
    "Order Completed",
    "Product Removed",
    "Coupon Applied",
    "Email Opened",
    "Email Link Clicked",
]
# Row-stochastic transition matrix: a plausible store funnel with loops and leaks.
_T = np.array(
    [
        [3, 3, 6, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 6, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        [3, 1, 4, 3, 1, 0, 0, 0, 0, 0, 0, 0],
        [1, 0, 3, 1, 4, 1, 0, 0, 1, 0, 0, 0],
        [1, 0, 2, 0, 0, 4, 0, 0, 1, 1, 0, 0],
        [0, 0, 1, 0, 1, 0, 5, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 1, 0, 0, 6, 0, 0, 0, 0],
        [3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        [1, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
        [3, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ],
    dtype=float,
)
_T /= _T.sum(axis=1, keepdims=True)
PAGES = np.array(["/", "/collections/new", "/collections/sale", "/about", "/blog/post"])


def generate(events: int, customers: int, seed: int = 7) -> pa.Table:
    """About ``events`` rows for ``customers`` people, as an Arrow table of event rows."""
    rng = np.random.default_rng(seed)
    # Events per customer: geometric-ish with a long tail, scaled to the wanted total.
    weights = rng.pareto(2.5, customers) + 1.0
    counts = np.maximum(1, np.round(weights / weights.sum() * events)).astype(np.int64)
    n = int(counts.sum())
    person = np.repeat(np.arange(customers, dtype=np.int64), counts)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # Markov chain, vectorised over customers: step k for every customer with > k events.
    state = np.empty(n, dtype=np.int8)
    cum = np.cumsum(_T, axis=1)
    start = rng.choice(
        len(STATES), size=customers, p=[0.5, 0.15, 0.25, 0, 0, 0, 0, 0, 0, 0, 0.1, 0]
    )
    state[first] = start
    current = start.astype(np.int64)
    for k in range(1, int(counts.max())):
        alive = counts > k
        idx = first[alive] + k
        u = rng.random(idx.size)
        nxt = (u[:, None] > cum[current[alive]]).sum(axis=1)
        nxt = np.minimum(nxt, len(STATES) - 1)
        state[idx] = nxt
        current[alive] = nxt
    # Time: each customer starts somewhere in 90 days; gaps of seconds to minutes, and now and
    # then days (a new visit).
    start_us = rng.integers(0, 90 * 86_400, customers) * 1_000_000
    gaps = rng.exponential(60.0, n) * 1_000_000
    gaps[rng.random(n) < 0.08] = rng.exponential(3 * 86_400.0) * 1_000_000
    gaps[first] = 0
    offsets = np.cumsum(gaps.astype(np.int64))
    offsets -= np.repeat(offsets[first], counts)
    ts = T0 + (np.repeat(start_us, counts) + offsets).astype("timedelta64[us]")
    # Rows arrive in time order, as a real store's log does (not grouped by customer).
    order = np.argsort(ts, kind="stable")
    person, state, ts = person[order], state[order], ts[order]
    is_page = state == 0
    page = np.where(is_page, rng.integers(0, len(PAGES), n), -1).astype(np.int8)
    is_order = state == STATES.index("Order Completed")
    revenue = np.where(is_order, rng.integers(500, 20_000, n), 0)
    # A compact table of numbers; store() turns it into event rows inside DuckDB, which is far
    # lighter than building 50 M Python strings here.
    return pa.table(
        {
            "person": pa.array(person),
            "state": pa.array(state),
            "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
            "page": pa.array(page),
            "revenue_cents": pa.array(revenue, type=pa.int64(), mask=~is_order),
        }
    )


def _list(values: Any) -> str:
    return "[" + ", ".join("'" + str(v) + "'" for v in values) + "]"


def store(events: int, customers: int) -> Path:
    """The cached DuckDB file of that size, generated on first use."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"paths-{events}-{customers}.duckdb"
    if path.exists():
        return path
    t = time.perf_counter()
    table = generate(events, customers)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    con.execute("SET enable_progress_bar = false")
    con.execute(create_events_table_sql())
    con.register("_gen", table)
    expressions = {
        "workspace_id": "'default'",
        "message_id": "'m' || CAST(row_number() OVER () AS VARCHAR)",
        "type": "CASE WHEN state = 0 THEN 'page' ELSE 'track' END",
        "event": f"{_list(STATES)}[state + 1]",
        "user_id": "'c' || CAST(person AS VARCHAR)",
        "person_id": "'c' || CAST(person AS VARCHAR)",
        "timestamp": "ts",
        "received_at": "ts",
        "page_path": f"CASE WHEN page >= 0 THEN {_list(PAGES)}[page + 1] END",
        "revenue": "CAST(revenue_cents / 100.0 AS DECIMAL(18,2))",
        "currency": "CASE WHEN revenue_cents IS NOT NULL THEN 'EUR' END",
        "source": "'bench'",
    }
    cols = ", ".join(expressions.get(c, "NULL") for c in EVENT_COLUMNS)
    con.execute(f"INSERT INTO events SELECT {cols} FROM _gen")
    con.close()
    tmp.rename(path)
    print(f"generated {table.num_rows:,} events in {time.perf_counter() - t:.1f} s → {path.name}")
    return path


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median wall-clock seconds and median CPU seconds (all threads) of ``runs`` calls.

    CPU time is the steadier figure on a shared machine: other processes stretch the wall
    clock but not the work this process does."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if walls[0] > SLOW_SECONDS:  # keeps a 50 M run within minutes: one run is enough
            break
    return statistics.median(walls), statistics.median(cpus)


SLOW_SECONDS = 20.0
BASELINE = """
SELECT event, nxt, count(*) FROM (
    SELECT event, lead(event) OVER (PARTITION BY person_id ORDER BY "timestamp") AS nxt
    FROM events WHERE workspace_id = 'default'
) GROUP BY event, nxt
"""


def run(
    events: int, customers: int, runs: int, threads: int | None
) -> tuple[dict[str, float], dict[str, float]]:
    path = store(events, customers)
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {threads}")
    backend = DuckDBBackend(con)
    n = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    groups = (GroupRule("/collections/.*", "collection"),)
    cases: dict[str, Callable[[], Any]] = {
        "baseline lead() group-by": lambda: backend.fetch(BASELINE),
        "transitions": lambda: transitions(backend, PathsQuery(collapse_repeats=False)),
        "paths (sankey + top paths)": lambda: paths(backend, PathsQuery(groups=groups)),
        "paths --from 'Product Added'": lambda: paths(
            backend, PathsQuery(start="Product Added", groups=groups)
        ),
        "paths --to 'Order Completed'": lambda: paths(
            backend, PathsQuery(end="Order Completed", groups=groups)
        ),
        "paths by session": lambda: paths(backend, PathsQuery(by="session", groups=groups)),
    }
    print(f"\n{n:,} events, {customers:,} customers, median of {runs} runs")
    print(f"  {'query':32s} {'wall':>8s} {'ratio':>7s} {'cpu':>8s} {'ratio':>7s}")
    out: dict[str, float] = {}
    cpu_out: dict[str, float] = {}
    for name, fn in cases.items():
        wall, cpu = timed(fn, runs)
        out[name], cpu_out[name] = wall, cpu
        base, cpu_base = out["baseline lead() group-by"], cpu_out["baseline lead() group-by"]
        print(f"  {name:32s} {wall:7.2f}s {wall / base:6.2f}× {cpu:7.2f}s {cpu / cpu_base:6.2f}×")
    con.close()
    return out, cpu_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, action="append", help="events (repeatable)")
    parser.add_argument("--customers", type=int, help="default: events / 20")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument(
        "--write-results", action="store_true", help="rewrite the paths section of RESULTS.md"
    )
    args = parser.parse_args()
    sizes = args.events or [10_000_000]
    results = {}
    cpus = {}
    for events in sizes:
        customers = args.customers or max(1, events // 20)
        results[events], cpus[events] = run(events, customers, args.runs, args.threads)
    if len(sizes) > 1:
        print("\ngrowth (seconds):")
        names = list(next(iter(results.values())))
        print("  " + " ".join(f"{e:>12,}" for e in sizes) + "  query")
        for name in names:
            print("  " + " ".join(f"{results[e][name]:12.2f}" for e in sizes) + f"  {name}")
    if args.write_results:
        write_results(results, cpus, args.runs)


TARGET_SECONDS = 2.0
MAIN = "paths (sankey + top paths)"


def write_results(
    walls: dict[int, dict[str, float]], cpus: dict[int, dict[str, float]], runs: int
) -> None:
    """The paths section of RESULTS.md: per size and query, wall and CPU time and their ratio
    to the baseline, and whether the goal is met."""
    from results import write_section

    base = "baseline lead() group-by"
    lines = [
        "## Paths (issue 3)",
        f"`benchmarks/paths.py`, median of {runs} runs (one when a run takes over "
        f"{SLOW_SECONDS:.0f} s); baseline: the naive `lead()` transition count on the same "
        "connection; ratio = ours / baseline (lower is better). CPU = all threads.",
        "",
        "| events | query | wall (s) | ratio | CPU (s) | CPU ratio |",
        "|---:|:---|---:|---:|---:|---:|",
    ]
    for events, row in walls.items():
        for name, wall in row.items():
            cpu = cpus[events][name]
            lines.append(
                f"| {events:,} | {name} | {wall:.2f} | {wall / row[base]:.2f}x | {cpu:.2f} | "
                f"{cpu / cpus[events][base]:.2f}x |"
            )
    ten = [e for e in walls if 9_000_000 <= e <= 11_000_000]
    if ten:
        wall = walls[ten[0]][MAIN]
        met = wall < TARGET_SECONDS
        lines += [
            "",
            f"Goal (10 M events, paths under {TARGET_SECONDS:.0f} s): "
            f"{'met' if met else 'NOT met'} in this run ({wall:.2f} s wall, "
            f"{cpus[ten[0]][MAIN]:.2f} CPU-s, on a shared machine).",
        ]
    write_section("paths", "\n".join(lines))


if __name__ == "__main__":
    main()
