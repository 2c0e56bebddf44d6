"""Benchmark: importing N events from Parquet and from CSV, against bare DuckDB loads.

    .venv/bin/python benchmarks/import_files.py              # 10 M events
    .venv/bin/python benchmarks/import_files.py --events 1000000

Generates N realistic events (a few hundred thousand customers, five event names, revenue on
orders, a product property) as Parquet and CSV in a temporary folder — generation is not timed —
then, for each file, times in the same process:

- the baseline: ``CREATE TABLE t AS SELECT * FROM read_parquet(…)`` / ``read_csv(…)`` into a
  fresh DuckDB file (DuckDB loading the file as it is, no shaping);
- the importer: ``wayline.events.importers.import_file`` into a fresh event store (shaping into
  the event row contract, properties as JSON, message ids, checks, one transaction, identity
  resolution), with the time of each stage.

It prints wall seconds, events per second, CPU seconds (all threads: steadier than wall time on
a busy machine) and the importer/baseline ratios. The targets on a 2-core
machine are 10 M events from Parquet in < 3 s and from CSV in < 6 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from wayline.events.importers import import_file
from wayline.storage.eventstore import EventStore


def generate(folder: Path, n: int) -> tuple[Path, Path]:
    """N events as Parquet (typed) and CSV (text, ISO-8601 timestamps)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""
        CREATE TABLE g AS SELECT
            CASE WHEN i % 4 = 0 THEN NULL ELSE 'cust-' || (i % 300000) END AS user_id,
            'anon-' || (i % 450000) AS anonymous_id,
            ['Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed',
             'Page Viewed'][i % 5 + 1] AS event,
            TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i * 2) AS "timestamp",
            's-' || (i // 9) AS session_id,
            ['mobile', 'desktop', 'tablet'][i % 3 + 1] AS device_type,
            ['ads', 'search', 'social', 'email', 'direct'][i % 5 + 1] AS channel,
            ['DE', 'FR', 'NL', 'ES', 'IT'][i % 5 + 1] AS country,
            '/products/p-' || (i % 1000) AS page_path,
            CASE WHEN i % 5 = 3 THEN CAST(round(10 + (i % 9000) / 100.0, 2) AS DECIMAL(18,2))
            END AS revenue,
            'EUR' AS currency,
            'SKU-' || (i % 500) AS product_id,
            i % 7 + 1 AS quantity
        FROM range({n}) t(i)
        """
    )
    parquet = folder / "events.parquet"
    csv = folder / "events.csv"
    con.execute(f"COPY g TO '{parquet}' (FORMAT parquet)")
    con.execute(
        f'COPY (SELECT * REPLACE (strftime("timestamp", \'%Y-%m-%dT%H:%M:%SZ\') AS "timestamp")'
        f" FROM g) TO '{csv}' (FORMAT csv, HEADER)"
    )
    con.close()
    return parquet, csv


def baseline(folder: Path, reader: str) -> tuple[float, float]:
    """Wall and CPU seconds of a bare DuckDB load of the file."""
    db = folder / f"baseline-{time.monotonic_ns()}.duckdb"
    con = duckdb.connect(str(db))
    started, cpu = time.perf_counter(), time.process_time()
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    con.close()
    db.unlink()
    return seconds, cpu


def importer(folder: Path, path: Path) -> tuple[float, float, int, dict[str, float]]:
    db = folder / f"store-{time.monotonic_ns()}.duckdb"
    stages: dict[str, float] = {}
    marks: list[tuple[str, float]] = []

    def progress(stage: str, pct: float | None) -> None:
        if not marks or marks[-1][0] != stage:
            marks.append((stage, time.perf_counter()))

    with EventStore(db) as store:
        started, cpu = time.perf_counter(), time.process_time()
        result = import_file(store, path, now=datetime.now(UTC), progress=progress)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    ends = [t for _, t in marks[1:]] + [started + seconds]
    for (stage, t0), t1 in zip(marks, ends, strict=True):
        stages[stage] = stages.get(stage, 0.0) + (t1 - t0)
    stages["other (plan, checks, summary)"] = seconds - sum(stages.values())
    db.unlink()
    return seconds, cpu, result.events_loaded, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events to generate")
    parser.add_argument("--write-results", action="store_true", help="update RESULTS.md")
    args = parser.parse_args()
    rows: list[tuple[str, float, float, float, float, float, dict[str, float]]] = []
    n = args.events
    with tempfile.TemporaryDirectory(prefix="wayline-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        parquet, csv = generate(folder, n)
        mb = {p.suffix: p.stat().st_size / 1e6 for p in (parquet, csv)}
        print(
            f"generated {n:,} events in {time.perf_counter() - t0:.1f}s "
            f"(parquet {mb['.parquet']:.0f} MB, csv {mb['.csv']:.0f} MB)"
        )
        cases = (
            ("parquet", parquet, f"read_parquet('{parquet}')", 3.0),
            ("csv", csv, f"read_csv('{csv}')", 6.0),
        )
        for name, path, reader, target in cases:
            base, base_cpu = baseline(folder, reader)
            seconds, cpu, loaded, stages = importer(folder, path)
            assert loaded == n, (loaded, n)
            scaled = target * n / 10_000_000
            verdict = "met" if seconds < scaled else "missed"
            print(
                f"{name:8s} baseline {base:7.2f}s {n / base:12,.0f} ev/s | "
                f"importer {seconds:7.2f}s {n / seconds:12,.0f} ev/s | "
                f"ratio {seconds / base:5.2f}x | target {scaled:.2f}s at this size: {verdict}"
            )
            # CPU seconds (all threads) say more than wall time on a busy machine.
            print(
                f"         cpu: baseline {base_cpu:7.2f}s | importer {cpu:7.2f}s | "
                f"ratio {cpu / base_cpu:5.2f}x"
            )
            for stage, s in stages.items():
                print(f"           {stage:32s} {s:7.2f}s")
            rows.append((name, base, base_cpu, seconds, cpu, scaled, stages))
    if args.write_results:
        write_results(n, rows)


def write_results(
    n: int, rows: list[tuple[str, float, float, float, float, float, dict[str, float]]]
) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from results import write_section

    lines = [
        "## Bulk import (issue 2)",
        "",
        f"`benchmarks/import_files.py --events {n}`: {n:,} generated events (300,000 customers, "
        "450,000 anonymous ids, a link between them on most rows), imported into a fresh event "
        "store with `wayline.events.importers.import_file` (shaping, properties as JSON, "
        "message ids, one transaction, identity resolution inside it). Baseline: DuckDB's bare "
        "`CREATE TABLE t AS SELECT * FROM read_…(file)` into a fresh file, same process.",
        "",
        "| file | baseline s (CPU s) | importer s (CPU s) | events/s | x baseline wall (CPU) "
        "| target | stages (wall s) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for name, base, base_cpu, seconds, cpu, target, stages in rows:
        met = seconds < target
        verdict = f"{name} {'met' if met else 'not met'} ({seconds:.1f} s vs {target:g} s"
        if base >= target:  # then no importer can meet it on this machine today
            verdict += f"; DuckDB's bare load alone took {base:.1f} s"
        verdicts.append(verdict + ")")
        stage_text = ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if v >= 0.05)
        lines.append(
            f"| {name} | {base:.2f} ({base_cpu:.2f}) | {seconds:.2f} ({cpu:.2f}) "
            f"| {n / seconds:,.0f} | {seconds / base:.2f} ({cpu / base_cpu:.2f}) "
            f"| < {target:g} s: {'met' if met else 'not met'} | {stage_text} |"
        )
    lines += [
        "",
        "Goal (10 M events: Parquet < 3 s, CSV < 6 s; scaled linearly to the size run): "
        + "; ".join(verdicts)
        + ".",
    ]
    write_section("import_files", "\n".join(lines))


if __name__ == "__main__":
    main()
