"""Paths' windowed rows in one pass over sorted arrays (pure: numpy in, numpy out, no I/O).

:func:`wayline.analytics.paths.paths_query` cuts each unit's sequence into its window with
window functions: one pass in raw order (previous item, gap, anchor counters), then, when
repeats are collapsed or an anchor is set, more passes numbering the kept rows — each a sort of
the rows on DuckDB. This module computes the same ``win`` rows from the events sorted once by
(unit, time, raw item rank): the previous row, the runs of equal items, the anchor counters and
the positions are all differences and cumulative sums along the sorted arrays. Measured on the
10 M-event benchmark store (shared 2-core machine): the window functions took ~5 of the plain
query's ~7.5 CPU-s; the sort here (:mod:`ordering`) ~1.2 and the pass ~0.4.

The rows are exactly ``_window_cte``'s (same definitions; rows equal in unit, time and raw
item are interchangeable, see :func:`wayline.analytics.paths._window`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wayline.analytics.ordering import unit_time_order

#: Code of the virtual start node (as in :mod:`wayline.analytics.paths`).
START = -1


@dataclass(frozen=True)
class WindowRows:
    """One row per item of a unit's window: ``row``, the index of its event in the arrays
    given (to gather the person, the unit…); its step (1, 2, … from a start; …, -1, 0 up to
    an end anchor); item code; source (the previous item, ``START`` at the sequence's first
    event, meaningless where ``has_source`` is false: the window starts mid-sequence); the gap
    into it in seconds (NaN where there is no source item) and whether the sequence ends
    there."""

    row: npt.NDArray[np.intp]
    step: npt.NDArray[np.int64]
    item: npt.NDArray[np.int64]
    source: npt.NDArray[np.int64]
    has_source: npt.NDArray[np.bool_]
    gap: npt.NDArray[np.float64]
    is_end: npt.NDArray[np.bool_]


def _upto(
    flags: npt.NDArray[np.bool_], unit_of: npt.NDArray[np.intp], firsts: npt.NDArray[np.intp]
) -> npt.NDArray[np.int64]:
    """Per row, how many rows of its unit up to and including it have ``flags`` set."""
    total = np.cumsum(flags, dtype=np.int64)
    before_unit = total[firsts] - flags[firsts]
    return total - before_unit[unit_of]


def _per_unit(flags: npt.NDArray[np.bool_], firsts: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
    """Per unit, how many of its rows have ``flags`` set."""
    if len(firsts) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(flags.astype(np.int64), firsts)


def windows(
    units: npt.NDArray[np.generic],
    times: npt.NDArray[np.integer],
    ranks: npt.NDArray[np.integer],
    items: npt.NDArray[np.integer],
    epochs: npt.NDArray[np.float64],
    *,
    steps: int,
    collapse_repeats: bool,
    at_start: npt.NDArray[np.bool_] | None = None,
    at_end: npt.NDArray[np.bool_] | None = None,
    order: npt.NDArray[np.intp] | None = None,
) -> WindowRows:
    """The windows of each unit's sequence from one row per event in any order: ``units``
    (the unit key), ``times`` (µs), ``ranks`` (the raw item's rank, for ties), ``items`` (item
    code), ``epochs`` (the time in epoch seconds, as the SQL's ``epoch(ts)``: gaps are their
    differences, so they are the same doubles); ``at_start``/``at_end``: whether the event is
    the start/end anchor (none: no such anchor); ``order``: the rows to window, already in
    (unit, time, rank) order (none: every row, sorted here).

    Without anchors a window is a sequence's first ``steps`` items; from a start, the first
    ``steps`` from its first start; to an end, the last ``steps`` up to its first end; between
    both, from the first start up to the first end after it (at most ``steps``), for the
    units that reach that end.
    """
    if order is None:
        order = unit_time_order(
            units, np.asarray(times, dtype=np.int64), np.asarray(ranks, dtype=np.int64)
        )
    unit = units[order]
    item = np.asarray(items)[order]
    n = len(item)
    new_unit = np.ones(n, dtype=bool)
    np.not_equal(unit[1:], unit[:-1], out=new_unit[1:])
    if collapse_repeats:
        keep = new_unit.copy()
        keep[1:] |= item[1:] != item[:-1]
    else:
        keep = np.ones(n, dtype=bool)
    firsts = np.flatnonzero(new_unit)
    unit_of = np.cumsum(new_unit, dtype=np.intp) - 1
    starts = None if at_start is None else np.asarray(at_start, dtype=bool)[order]
    ends = None if at_end is None else np.asarray(at_end, dtype=bool)[order]

    eligible = keep
    sequence = keep  # the rows whose last one ends the unit's sequence (``is_end``)
    if starts is not None:
        xs = _upto(starts, unit_of, firsts)
        eligible = keep & (xs >= 1)
        sequence = eligible
        if ends is not None:
            # Up to the first end after the anchor (the anchor itself is no end, even when
            # start and end are the same item), counted among the rows kept from the anchor.
            anchor = starts & (xs == 1)
            y_after = ends & ~anchor & eligible
            ys_before = _upto(y_after, unit_of, firsts) - y_after
            reaches = _per_unit(y_after, firsts) > 0
            eligible = eligible & reaches[unit_of] & (ys_before == 0)
    elif ends is not None:
        ys_before = _upto(ends, unit_of, firsts) - ends
        reaches = _per_unit(ends, firsts) > 0
        eligible = keep & reaches[unit_of] & (ys_before == 0)

    rows = np.flatnonzero(eligible)
    first = np.ones(len(rows), dtype=bool)
    np.not_equal(unit_of[rows[1:]], unit_of[rows[:-1]], out=first[1:])
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = first[1:]
    seq = np.arange(len(rows), dtype=np.int64)
    pos = seq - np.maximum.accumulate(np.where(first, seq, 0)) + 1
    # The raw row before each (the end of the previous run): its item is the source.
    before = np.maximum(rows - 1, 0)
    has_prev = ~new_unit[rows]

    if ends is not None and starts is None:
        # Steps count back from the anchor (the last eligible row of the unit) at 0.
        back = np.zeros(len(rows), dtype=np.int64)
        if len(rows):
            unit_last = np.flatnonzero(last)
            back = pos[unit_last][np.cumsum(first) - 1] - pos + 1
        window = back <= steps
        step = 1 - back
        has_source = ~has_prev | (back < steps)
        has_gap = has_prev & (back < steps)
        # The sequence ends at the anchor when no other item follows it.
        if collapse_repeats:
            others = ~ends
            at_last = _per_unit(others, firsts)[unit_of] == _upto(others, unit_of, firsts)
        else:
            at_last = np.ones(n, dtype=bool)
            at_last[:-1] = new_unit[1:]
        is_end = (back == 1) & at_last[rows]
    else:
        window = pos <= steps
        step = pos
        has_source = (pos > 1) | ~has_prev
        has_gap = pos > 1
        if sequence is eligible:
            is_end = last
        else:  # no row of ``sequence`` follows (it may go on past the window's end)
            later = _per_unit(sequence, firsts)[unit_of] - _upto(sequence, unit_of, firsts)
            is_end = later[rows] == 0

    rows, step, before = rows[window], step[window], before[window]
    has_prev, has_source, has_gap = has_prev[window], has_source[window], has_gap[window]
    gap = epochs[order[rows]] - epochs[order[before]]
    return WindowRows(
        row=order[rows],
        step=step,
        item=item[rows].astype(np.int64),
        source=np.where(has_prev, item[before], START).astype(np.int64),
        has_source=has_source,
        gap=np.where(has_gap, gap, np.nan),
        is_end=is_end[window],
    )


def windows_in_parts(
    units: npt.NDArray[np.unsignedinteger],
    times: npt.NDArray[np.integer],
    ranks: npt.NDArray[np.integer],
    items: npt.NDArray[np.integer],
    epochs: npt.NDArray[np.float64],
    *,
    steps: int,
    collapse_repeats: bool,
    at_start: npt.NDArray[np.bool_] | None = None,
    at_end: npt.NDArray[np.bool_] | None = None,
    parts: int,
    min_part: int = 500_000,
    orders: list[npt.NDArray[np.intp]] | None = None,
) -> WindowRows:
    """:func:`windows` on ``parts`` disjoint sets of units (by the unit key's remainder,
    ``units`` being hashes), in threads: numpy sorts and gathers without holding the GIL, so
    the sort of the whole log spreads over the cores. The windows are the same rows, in
    another order (only their counts and medians are used). Below ``min_part`` rows per part
    threads cost more than they save.

    ``orders``: the parts already made and sorted, as :func:`windows`'s ``order`` (each holds
    whole units), e.g. by :func:`wayline.analytics.sessions_pass.sessions`."""
    whole = functools.partial(
        windows,
        units,
        times,
        ranks,
        items,
        epochs,
        steps=steps,
        collapse_repeats=collapse_repeats,
        at_start=at_start,
        at_end=at_end,
    )
    if orders is not None:
        return _in_threads([functools.partial(whole, order=order) for order in orders])
    if parts <= 1 or len(units) < parts * min_part:
        return whole()
    if parts & (parts - 1) == 0:  # a power of two: a mask, much cheaper than a remainder
        bucket = (units & np.uint64(parts - 1)).astype(np.int64)
    else:
        bucket = (units % np.uint64(parts)).astype(np.int64)

    def part(i: int) -> WindowRows:
        sel = np.flatnonzero(bucket == i)
        got = windows(
            units[sel],
            times[sel],
            ranks[sel],
            items[sel],
            epochs[sel],
            at_start=None if at_start is None else at_start[sel],
            at_end=None if at_end is None else at_end[sel],
            steps=steps,
            collapse_repeats=collapse_repeats,
        )
        return WindowRows(
            row=sel[got.row],
            step=got.step,
            item=got.item,
            source=got.source,
            has_source=got.has_source,
            gap=got.gap,
            is_end=got.is_end,
        )

    return _in_threads([functools.partial(part, i) for i in range(parts)])


def _in_threads(parts: list[Callable[[], WindowRows]]) -> WindowRows:
    """The parts' windows, computed in one thread each, as one set of rows."""
    if len(parts) == 1:
        return parts[0]()
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        done = list(pool.map(lambda part: part(), parts))
    return WindowRows(
        row=np.concatenate([w.row for w in done]),
        step=np.concatenate([w.step for w in done]),
        item=np.concatenate([w.item for w in done]),
        source=np.concatenate([w.source for w in done]),
        has_source=np.concatenate([w.has_source for w in done]),
        gap=np.concatenate([w.gap for w in done]),
        is_end=np.concatenate([w.is_end for w in done]),
    )
