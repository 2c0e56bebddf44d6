"""How fast the sample-store simulator makes events, against a trivial numpy baseline.

    .venv/bin/python benchmarks/simulate.py                  # 1 M events
    .venv/bin/python benchmarks/simulate.py --events 10000000
    .venv/bin/python benchmarks/simulate.py --load           # also load into a temp DuckDB file

Phases: *generate* (``simulate_store``: customers act, events laid out as numeric columns, ground
truth measured) and *rows* (the Arrow rows, text and JSON included, built chunk by chunk as
``load_store`` consumes them). The baseline, run in the same process, draws as many random
timestamps with numpy and sorts them: the least any generator of that many time-ordered events
has to do. The ratio says how many times that floor the simulator costs. Peak memory is the
process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from wayline.events.simulator import StoreConfig, load_store, simulate_store
from wayline.storage.eventstore import EventStore


def baseline(n: int, seed: int) -> float:
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    ts = rng.integers(0, 180 * 86_400 * 1_000_000, n)
    ts.sort()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load", action="store_true", help="also load into DuckDB")
    args = parser.parse_args()

    config = StoreConfig.for_events(args.events, seed=args.seed)
    started = time.perf_counter()
    sim = simulate_store(config)
    generated = time.perf_counter()
    rows = sum(batch.num_rows for batch in sim.batches())
    built = time.perf_counter()
    total = built - started
    base = baseline(rows, args.seed)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux

    print(f"events              {rows:,} ({config.customers:,} customers)")
    print(f"generate            {generated - started:8.2f} s")
    print(f"rows (text, JSON)   {built - generated:8.2f} s")
    print(f"total               {total:8.2f} s  = {rows / total:,.0f} events/s")
    print(f"baseline (numpy)    {base:8.2f} s  = {rows / base:,.0f} timestamps/s")
    print(f"ratio               {total / base:8.1f} x the baseline")
    print(f"peak memory         {peak_gb:8.2f} GB")
    if args.load:
        with tempfile.TemporaryDirectory() as folder, EventStore(Path(folder) / "e.duckdb") as s:
            started = time.perf_counter()
            load_store(s, sim)
            took = time.perf_counter() - started
            print(f"load + identities   {took:8.2f} s  = {rows / took:,.0f} events/s")


if __name__ == "__main__":
    main()
