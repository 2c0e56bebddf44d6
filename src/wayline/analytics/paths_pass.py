"""Paths' windowed rows in one pass over sorted arrays (pure: numpy in, numpy out, no I/O).

:func:`wayline.analytics.paths.paths_query` cuts each unit's sequence into its window with
window functions: one pass in raw order (previous item, gap), then, when repeats are collapsed,
a second one numbering the kept rows and a third finding the last — each a sort of the rows
on DuckDB. For the plain case (per person, no anchor) this module computes the same ``win``
rows from the events sorted once by (unit, time, raw item rank): the previous row, the runs of
equal items and the positions are all differences and cumulative sums along the sorted
arrays. Measured on the 10 M-event benchmark store (shared 2-core machine): the windows took
~5 of the query's ~7 CPU-s; see :mod:`wayline.analytics.paths` for the rest of the query.

The rows are exactly ``_window_cte``'s for that case (same definitions; rows equal in unit,
time and raw item are interchangeable, see :func:`wayline.analytics.paths._window`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    units: npt.NDArray[np.integer],
    times: npt.NDArray[np.integer],
    ranks: npt.NDArray[np.integer],
    items: npt.NDArray[np.integer],
    epochs: npt.NDArray[np.float64],
    *,
    steps: int,
    collapse_repeats: bool,
) -> WindowRows:
    """The windows (first ``steps`` items of each unit's sequence) from one row per event in
    any order: ``units`` (the unit as a number 0, 1, … — e.g. a dictionary code), ``times``
    (µs), ``ranks`` (the raw item's rank, for ties), ``items`` (item code), ``epochs`` (the
    time in epoch seconds, as the SQL's ``epoch(ts)``: gaps are their differences, so they are
    the same doubles)."""
    order = _sort(
        np.asarray(units, dtype=np.int64),
        np.asarray(times, dtype=np.int64),
        np.asarray(ranks, dtype=np.int64),
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


def _sort(
    units: npt.NDArray[np.int64], times: npt.NDArray[np.int64], ranks: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """The order by unit, time and rank (``units`` and ``ranks`` small non-negative numbers).

    Time and rank are packed into one key; an event log mostly arrives in time order, so the
    stable sort on it costs little. Then, for the unit, each row's unit and position are
    packed into one unique 64-bit key and sorted plainly (measured on 10 M rows: ~0.7 CPU-s,
    against ~1.3 for ``np.lexsort`` of the three keys), falling back to lexsort when the
    packing would not fit in 63 bits."""
    n = len(times)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    t0, span = int(times.min()), int(times.max()) - int(times.min())
    width = int(ranks.max()) + 1
    row_bits = max(1, (n - 1).bit_length())
    unit_bits = max(1, int(units.max()).bit_length())
    if (span + 1) * width >= 2**62 or row_bits + unit_bits > 62:
        return np.lexsort((ranks, times, units)).astype(np.int64)
    key = (times - t0) * width + ranks
    if bool(np.all(key[1:] >= key[:-1])):
        by_time = None
        grouped = units
    else:
        by_time = np.argsort(key, kind="stable")
        grouped = units[by_time]
    packed = np.sort((grouped << row_bits) | np.arange(n, dtype=np.int64))
    order = packed & ((1 << row_bits) - 1)
    return order if by_time is None else by_time[order]
