"""Paths' windowed rows in one pass over sorted arrays (pure: numpy in, numpy out, no I/O).

:func:`wayline.analytics.paths.paths_query` cuts each unit's sequence into its window with
window functions: one pass in raw order (previous item, gap), then, when repeats are collapsed,
a second one numbering the kept rows and a third finding the last — each a sort of the rows
on DuckDB. For the plain case (per person, no anchor) this module computes the same ``win``
rows from the events sorted once by (unit, time, raw item rank): the previous row, the runs of
equal items and the positions are all differences and cumulative sums along the sorted
arrays. Measured on the 10 M-event benchmark store (shared 2-core machine): the window
functions took ~5 of the query's ~7.5 CPU-s; the sort here (:mod:`ordering`) ~1.2 and the
pass ~0.4.

The rows are exactly ``_window_cte``'s for that case (same definitions; rows equal in unit,
time and raw item are interchangeable, see :func:`wayline.analytics.paths._window`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wayline.analytics.ordering import unit_time_order

#: Code of the virtual start node (as in :mod:`wayline.analytics.paths`).
START = -1


@dataclass(frozen=True)
class WindowRows:
    """One row per item of a unit's window: its unit, step (1, 2, …), item code, source (the
    previous item, ``START`` at step 1), the gap into it in seconds (NaN at step 1) and whether
    the sequence ends there."""

    unit: npt.NDArray[np.generic]
    step: npt.NDArray[np.int64]
    item: npt.NDArray[np.int64]
    source: npt.NDArray[np.int64]
    gap: npt.NDArray[np.float64]
    is_end: npt.NDArray[np.bool_]


def first_steps(
    units: npt.NDArray[np.generic],
    times: npt.NDArray[np.integer],
    ranks: npt.NDArray[np.integer],
    items: npt.NDArray[np.integer],
    epochs: npt.NDArray[np.float64],
    *,
    steps: int,
    collapse_repeats: bool,
) -> WindowRows:
    """The windows (first ``steps`` items of each unit's sequence) from one row per event in
    any order: ``units`` (the unit key), ``times``
    (µs), ``ranks`` (the raw item's rank, for ties), ``items`` (item code), ``epochs`` (the
    time in epoch seconds, as the SQL's ``epoch(ts)``: gaps are their differences, so they are
    the same doubles)."""
    order = unit_time_order(
        units, np.asarray(times, dtype=np.int64), np.asarray(ranks, dtype=np.int64)
    )
    unit = units[order]
    item = items[order]
    n = len(item)
    new_unit = np.ones(n, dtype=bool)
    np.not_equal(unit[1:], unit[:-1], out=new_unit[1:])
    if collapse_repeats:
        kept = new_unit.copy()
        kept[1:] |= item[1:] != item[:-1]
        rows = np.flatnonzero(kept)
    else:
        rows = np.arange(n)
    first_of_unit = new_unit[rows]
    # Position among the unit's kept rows: kept-row number minus that of the unit's first.
    seq = np.arange(len(rows), dtype=np.int64)
    pos = seq - np.maximum.accumulate(np.where(first_of_unit, seq, 0)) + 1
    last_of_unit = np.ones(len(rows), dtype=bool)
    last_of_unit[:-1] = first_of_unit[1:]
    window = pos <= steps
    rows, pos, last_of_unit, first = (
        rows[window],
        pos[window],
        last_of_unit[window],
        first_of_unit[window],
    )
    # Gaps only where needed: from the raw row before (the end of the previous run).
    before = np.maximum(rows - 1, 0)
    gap = epochs[order[rows]] - epochs[order[before]]
    return WindowRows(
        unit=unit[rows],
        step=pos,
        item=item[rows].astype(np.int64),
        source=np.where(first, START, item[before]).astype(np.int64),
        gap=np.where(first, np.nan, gap),
        is_end=last_of_unit,
    )


def first_steps_in_parts(
    units: npt.NDArray[np.unsignedinteger],
    times: npt.NDArray[np.integer],
    ranks: npt.NDArray[np.integer],
    items: npt.NDArray[np.integer],
    epochs: npt.NDArray[np.float64],
    *,
    steps: int,
    collapse_repeats: bool,
    parts: int,
    min_part: int = 500_000,
) -> WindowRows:
    """:func:`first_steps` on ``parts`` disjoint sets of units (by the unit key's remainder,
    ``units`` being hashes), in threads: numpy sorts and gathers without holding the GIL, so
    the sort of the whole log spreads over the cores. The windows are the same rows, in
    another order (only their counts and medians are used). Below ``min_part`` rows per part
    threads cost more than they save."""
    if parts <= 1 or len(units) < parts * min_part:
        return first_steps(
            units, times, ranks, items, epochs, steps=steps, collapse_repeats=collapse_repeats
        )
    from concurrent.futures import ThreadPoolExecutor

    if parts & (parts - 1) == 0:  # a power of two: a mask, much cheaper than a remainder
        bucket = (units & np.uint64(parts - 1)).astype(np.int64)
    else:
        bucket = (units % np.uint64(parts)).astype(np.int64)

    def part(i: int) -> WindowRows:
        sel = np.flatnonzero(bucket == i)
        return first_steps(
            units[sel],
            times[sel],
            ranks[sel],
            items[sel],
            epochs[sel],
            steps=steps,
            collapse_repeats=collapse_repeats,
        )

    with ThreadPoolExecutor(max_workers=parts) as pool:
        done = list(pool.map(part, range(parts)))
    return WindowRows(
        unit=np.concatenate([w.unit for w in done]),
        step=np.concatenate([w.step for w in done]),
        item=np.concatenate([w.item for w in done]),
        source=np.concatenate([w.source for w in done]),
        gap=np.concatenate([w.gap for w in done]),
        is_end=np.concatenate([w.is_end for w in done]),
    )
