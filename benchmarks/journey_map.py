"""Benchmark: building the customer journey map of a large sample store.

    .venv/bin/python benchmarks/journey_map.py                     # 10 M events (target: < 10 s)
    .venv/bin/python benchmarks/journey_map.py --events 1000000
    .venv/bin/python benchmarks/journey_map.py --events 1000000 --no-pain-points

The store is the sample-store simulator's (:mod:`wayline.events.simulator`: devices, channels,
page paths, orders, deliveries, reviews and the six injected problems), generated once per size
and cached as a DuckDB file under ``benchmarks/data/`` (git-ignored), identities resolved.

Per size it prints the median of ``--runs`` runs of

- the **baseline**: one plain ordered 5-step funnel (``Product Viewed → Product Added →
  Checkout Started → Payment Info Entered → Order Completed``, 14-day window) with
  :func:`wayline.analytics.funnels.run_funnel`, in the same process on the same connection;
- the **map**: :func:`wayline.journeymap.build.build_map` for the whole period (stages,
  actions, touchpoints, channels, devices, drop-offs, funnel, KPIs);
- the **map with --compare previous** (two periods);
- once, the **map with pain points** (the detectors of :mod:`wayline.journeymap.painpoints`),

and each as a ratio to the baseline. The issue's target is the full map (with pain points) in
under 10 s for 10 M events. Each figure also comes with the process's CPU time (DuckDB's threads
included): on a machine shared with other work the wall time of one run swings by a factor of
two, the CPU time much less, so CPU time and its ratio to the baseline's are the steadier
comparison between two versions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wayline.analytics.backend import DuckDBBackend
from wayline.analytics.funnels import FunnelQuery, FunnelStep, run_funnel
from wayline.events.simulator import StoreConfig, load_store, simulate_store
from wayline.journeymap.build import MapQuery, build_map
from wayline.journeymap.stages import default_mapping
from wayline.storage.eventstore import EventStore

DATA = Path(__file__).parent / "data"
START = datetime(2026, 1, 1, tzinfo=UTC)
STEPS = (
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Payment Info Entered",
    "Order Completed",
)
TARGET_SECONDS = 10.0


def store(events: int) -> Path:
    """The cached sample store of about ``events`` events, generated on first use."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"journey-map-v1-{events}.duckdb"
    if path.exists():
        return path
    t = time.perf_counter()
    sim = simulate_store(StoreConfig.for_events(events, seed=7, start=START))
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with EventStore(tmp) as s:
        load_store(s, sim)
        n = s.count()
    tmp.rename(path)
    print(f"generated {n:,} events in {time.perf_counter() - t:.1f} s → {path.name}")
    return path


CPU: dict[str, float] = {}
"""The median CPU time of the last :func:`timed` call per label."""


def timed(fn: Callable[[], Any], runs: int, label: str = "") -> tuple[float, Any]:
    """The median wall time of ``runs`` calls and the last result; the median CPU time goes to
    :data:`CPU` under ``label``."""
    times = []
    cpu = []
    result = None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU[label] = statistics.median(cpu)
    return statistics.median(times), result


def cpu_text(label: str) -> str:
    """``[CPU x s, y× the baseline's]``."""
    cpu, base = CPU[label], CPU["baseline"]
    return f"[CPU {cpu:6.2f} s, {cpu / base:.1f}× the baseline's]"


def bench(events: int, runs: int, pain_points: bool) -> dict[str, Any]:
    path = store(events)
    now = datetime.now(UTC)
    mapping = default_mapping()
    with EventStore(path, read_only=True) as s:
        backend = DuckDBBackend(s.con)
        n = s.count()
        funnel = FunnelQuery(steps=tuple(FunnelStep((e,)) for e in STEPS))
        base, fres = timed(lambda: run_funnel(backend, funnel), runs, "baseline")
        plain, m = timed(lambda: build_map(backend, MapQuery(), mapping, now=now), runs, "map")
        (lo, hi) = (m.since, m.until)
        half = MapQuery(since=lo + (hi - lo) / 2, until=hi, compare_previous=True)
        compared, _ = timed(lambda: build_map(backend, half, mapping, now=now), runs, "compared")
        print(f"\n{n:,} events, {m.views[0].persons.value:,} customers ({path.name})")
        print(f"  baseline 5-step funnel      {base:7.2f} s   (1.00×) {cpu_text('baseline')}")
        print(
            f"  journey map                 {plain:7.2f} s   ({plain / base:.2f}×) "
            f"{cpu_text('map')}"
        )
        print(
            f"  journey map, compared       {compared:7.2f} s   ({compared / base:.2f}×) "
            f"{cpu_text('compared')}"
        )
        # The same customers reach the same steps by either route.
        assert fres.steps[0].users > 0 and m.views[0].funnel[-1].persons.value
        ok = plain < TARGET_SECONDS
        if pain_points:
            from wayline.journeymap.findings import find_pain_points

            full, mp = timed(
                lambda: build_map(
                    backend, MapQuery(), mapping, now=now, find_pain_points=find_pain_points
                ),
                1,
                "full",
            )
            found = len(mp.views[0].pain_points)
            print(
                f"  journey map + pain points   {full:7.2f} s   ({full / base:.2f}×) "
                f"{cpu_text('full')}, {found} pain points"
            )
            ok = full < TARGET_SECONDS
        scaled = "" if events >= 10_000_000 else " (target is for 10 M events)"
        print(f"  target < {TARGET_SECONDS:.0f} s: {'met' if ok else 'NOT met'}{scaled}")
        out: dict[str, Any] = {
            "events": n,
            "customers": m.views[0].persons.value,
            "baseline": base,
            "map": plain,
            "compared": compared,
            "ok": ok,
            "cpu": dict(CPU),
        }
        if pain_points:
            out["full"] = full
            out["found"] = found
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, action="append", help="events (repeatable)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-pain-points", action="store_true")
    parser.add_argument(
        "--write-results", action="store_true", help="rewrite the journey_map section of RESULTS.md"
    )
    args = parser.parse_args()
    sizes = args.events or [10_000_000]
    results = [bench(n, args.runs, not args.no_pain_points) for n in sizes]
    if args.write_results:
        write_results(results, args.runs)
    sys.exit(0 if all(r["ok"] for r in results) else 1)


def write_results(rows: list[dict[str, Any]], runs: int) -> None:
    """The journey_map section of RESULTS.md: per size the baseline funnel, the map, the
    compared map and the map with pain points, as ratios to the baseline."""
    from results import write_section

    lines = [
        "## Journey map (issue 4)",
        f"`benchmarks/journey_map.py` on the sample-store simulator's data; median of {runs} "
        "runs (the map with pain points: one run); baseline: one plain ordered 5-step funnel "
        "on the same connection; ratio = ours / baseline.",
        "",
        "| events | customers | baseline funnel (s) | map (s) | ratio | compared (s) | ratio "
        "| map + pain points (s) | ratio | pain points |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b = r["baseline"]
        full = (
            f"{r['full']:.2f} | {r['full'] / b:.1f}x | {r['found']}" if "full" in r else "- | - | -"
        )
        lines.append(
            f"| {r['events']:,} | {r['customers']:,} | {b:.2f} | {r['map']:.2f} | "
            f"{r['map'] / b:.1f}x | {r['compared']:.2f} | {r['compared'] / b:.1f}x | {full} |"
        )
    lines += [
        "",
        "CPU time of the same runs (the process, DuckDB's threads included; steadier than"
        " wall time on a shared machine):",
        "",
    ]
    for r in rows:
        c = r["cpu"]
        parts = [f"baseline {c['baseline']:.2f} s"] + [
            f"{label} {c[key]:.2f} s ({c[key] / c['baseline']:.1f}x)"
            for key, label in (
                ("map", "map"),
                ("compared", "compared"),
                ("full", "map + pain points"),
            )
            if key in c
        ]
        lines.append(f"- {r['events']:,} events: " + ", ".join(parts) + ".")
    ten = [r for r in rows if r["events"] >= 9_000_000 and "full" in r]
    if ten:
        r = ten[0]
        lines += [
            "",
            f"Goal (10 M events, whole map with pain points under {TARGET_SECONDS:.0f} s): "
            f"{'met' if r['full'] < TARGET_SECONDS else 'NOT met'} in this run "
            f"({r['full']:.2f} s, on a shared machine).",
        ]
    write_section("journey_map", "\n".join(lines))


if __name__ == "__main__":
    main()
