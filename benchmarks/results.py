"""Write one benchmark's section of ``benchmarks/RESULTS.md`` (between its name markers)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    """A one-line description of where and when the figures were taken."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}; {os.cpu_count()} CPUs ({cpu}); load average {load}"


def write_section(name: str, markdown: str) -> None:
    """Replace the section named ``name`` with ``markdown`` (a heading and its text)."""
    text = RESULTS.read_text()
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{markdown.strip()}\n\n_Measured {machine()}._\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def run_sizes(
    name: str,
    heading: str,
    bench: Callable[[int, int], tuple[bool, str]],
    *,
    description: str,
    runs: int,
    default_events: int = 1_000_000,
) -> None:
    """The command line of a benchmark measured per store size: ``--events`` (repeatable),
    ``--runs``, ``--no-write``. ``bench(events, runs)`` answers (target met, its markdown); the
    section ``name`` is rewritten as ``heading`` and every size's markdown; the exit status says
    whether every target was met."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, action="append", help="events (repeatable)")
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    args = parser.parse_args()
    sections = []
    ok = True
    for n in args.events or [default_events]:
        print(f"{n:,} events")
        met, text = bench(n, args.runs)
        ok = ok and met
        sections.append(text)
    if not args.no_write:
        write_section(name, heading + "\n\n" + "\n\n".join(sections))
    sys.exit(0 if ok else 1)
