"""Sessions in numpy: each event row's session as a 64-bit key, and the rows in session order
for the one-pass paths (pure, no I/O).

The rule is :func:`wayline.analytics.sessions.sessionize_sql`'s:

- a row with a ``session_id`` belongs to the session ``(person, session_id)``;
- a person's rows without one are ordered by time, and a row more than the gap after the
  previous such row (strictly more; ties never split) opens the person's next inferred session.

One sort does both jobs. Rows are grouped by a key per (person, ``session_id``) pair, and per
person for the rows without an id, then sorted by time and raw item rank inside each group. The
inferred sessions are the runs cut where the gap is exceeded, and each session's rows come out
contiguous and ordered as :func:`wayline.analytics.paths_pass.windows` needs them, so the
windows skip their own sort.

Keys are hashes (``splitmix64``'s finaliser): two groups share a key with a probability of
about ``groups² / 2⁶⁵`` (~3e-8 for a million), the odds the person hashes of the paths already
take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wayline.analytics.ordering import unit_time_order

_U64 = np.uint64
# splitmix64's constants: an odd multiplier to fold a pair into one word, and the finaliser's.
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


def mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: a bijection of 64-bit words that scatters every input bit, so
    low bits are as good as high ones for splitting keys into parts."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _MIX1
        x = x ^ (x >> _U64(27))
        x = x * _MIX2
        return x ^ (x >> _U64(31))


@dataclass(frozen=True)
class Sessions:
    """``units``: each row's session key. ``orders``: per part, the kept rows in (session,
    time, rank) order; a part holds whole sessions, so parts can be windowed apart."""

    units: npt.NDArray[np.uint64]
    orders: list[npt.NDArray[np.intp]]


def sessions(
    persons: npt.NDArray[np.uint64],
    session_ids: npt.NDArray[np.uint64],
    has_session_id: npt.NDArray[np.bool_],
    times: npt.NDArray[np.int64],
    ranks: npt.NDArray[np.int64],
    epochs: npt.NDArray[np.float64],
    *,
    gap_seconds: float,
    keep: npt.NDArray[np.bool_] | None = None,
    parts: int = 1,
) -> Sessions:
    """Cut the rows into sessions (see the module docstring).

    Args:
        persons: the person's 64-bit hash per row.
        session_ids: the ``session_id``'s hash, read where ``has_session_id``.
        times: the time in µs; ``ranks``: small non-negative numbers ordering equal times
            (the raw item's rank).
        epochs: the same time in epoch seconds, as SQL's ``epoch(ts)``: gaps are compared on
            these doubles, so a gap of exactly ``gap_seconds`` splits as it does in SQL.
        gap_seconds: the inactivity that opens an inferred session (strictly more).
        keep: the rows to order (none: all). The others still count towards sessions: they
            are the events a path query excludes after sessions are cut.
        parts: threads; the rows are split by group, and numpy sorts without the GIL.
    """
    own = np.asarray(has_session_id, dtype=bool)
    with np.errstate(over="ignore"):
        # (+1: the finaliser maps 0 to 0, which would give person 0's id 0 person 0's group.)
        groups = np.where(own, mix(persons * _GOLDEN + session_ids + _U64(1)), persons)
    units = np.empty(len(groups), dtype=np.uint64)
    parts = max(1, min(parts, len(groups) // 2))
    if parts == 1:
        return Sessions(units, [_cut(np.arange(len(groups)), groups, own, times, ranks, epochs,
                                     gap_seconds, keep, units, 0, 1)])  # fmt: skip
    from concurrent.futures import ThreadPoolExecutor

    bucket = groups % _U64(parts)

    def part(i: int) -> npt.NDArray[np.intp]:
        rows = np.flatnonzero(bucket == _U64(i))
        return _cut(rows, groups, own, times, ranks, epochs, gap_seconds, keep, units, i, parts)

    with ThreadPoolExecutor(max_workers=parts) as pool:
        return Sessions(units, list(pool.map(part, range(parts))))


def _cut(
    rows: npt.NDArray[np.intp],
    groups: npt.NDArray[np.uint64],
    own: npt.NDArray[np.bool_],
    times: npt.NDArray[np.int64],
    ranks: npt.NDArray[np.int64],
    epochs: npt.NDArray[np.float64],
    gap_seconds: float,
    keep: npt.NDArray[np.bool_] | None,
    units: npt.NDArray[np.uint64],
    part: int,
    parts: int,
) -> npt.NDArray[np.intp]:
    """One part's sessions: writes ``units[rows]``, returns its kept rows in session order.

    The running count of session starts is a number unique to the session within the part;
    part ``part`` of ``parts`` numbers them ``part``, ``part + parts``…, so keys never clash
    across parts."""
    order = rows[unit_time_order(groups[rows], times[rows], ranks[rows])]
    group = groups[order]
    epoch = epochs[order]
    opens = np.ones(len(order), dtype=bool)
    np.not_equal(group[1:], group[:-1], out=opens[1:])
    opens[1:] |= ~own[order[1:]] & ((epoch[1:] - epoch[:-1]) > gap_seconds)
    number = np.cumsum(opens, dtype=np.uint64) * _U64(parts) + _U64(part)
    units[order] = mix(number)
    return order if keep is None else order[keep[order]]
