"""Scanning segments for one that does much worse than the rest (pure, over visit cells).

For one rate (``numerator``/``denominator`` measures of :mod:`.visits` cells) every value of
every dimension is compared with the rest of the visits that have a value for that dimension.
The most significant segment that passes the thresholds (:mod:`.stats`) is reported; then its
visits are set aside and the scan runs again on the others, up to ``rounds`` times. Setting the
first finding's visits aside is what keeps one problem from being reported once per correlated
dimension: mobile visits run on iOS and Android, so once ``device_type = mobile`` explains a
drop, the iOS and Android segments look like everyone else among the remaining visits — while a
second, independent problem (France, say) still stands out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wayline.journeymap.detectors.stats import (
    Comparison,
    Direction,
    Thresholds,
    critical_z,
    is_finding,
)
from wayline.journeymap.detectors.visits import Cell, subset, values_of

Accept = Callable[[Sequence[Cell], Sequence[Cell]], bool]


@dataclass(frozen=True)
class SegmentHit:
    dimension: str
    value: str
    comparison: Comparison
    inside: tuple[Cell, ...]
    rest: tuple[Cell, ...]
    z_critical: float


def comparisons(cells: Sequence[Cell], dims: Sequence[str]) -> int:
    """How many segment comparisons one scan round makes (for the Bonferroni guard)."""
    return sum(len(values_of(cells, d)) for d in dims)


def scan(
    cells: Sequence[Cell],
    dims: Sequence[str],
    numerator: str,
    denominator: str,
    direction: Direction,
    thresholds: Thresholds,
    *,
    family: int = 1,
    rounds: int = 3,
    accept: Accept | None = None,
) -> list[SegmentHit]:
    """Segments whose rate is significantly and materially worse than the rest's.

    Args:
        family: how many rates the caller scans in all; the Bonferroni guard counts
            ``family × rounds × comparisons`` tests.
        accept: an extra condition on (segment cells, rest cells), e.g. "they do browse".
    """
    z_crit = critical_z(thresholds.alpha, family * rounds * max(1, comparisons(cells, dims)))
    remaining = list(cells)
    hits: list[SegmentHit] = []
    for _ in range(rounds):
        best: SegmentHit | None = None
        for dim in dims:
            per_value, k_all, n_all = _sums(remaining, dim, numerator, denominator)
            for value in sorted(per_value):
                k_a, n_a = per_value[value]
                c = Comparison(k_a, n_a, k_all - k_a, n_all - n_a)
                if not is_finding(c, z_crit, direction, thresholds):
                    continue
                inside, rest = subset(remaining, dim, value)
                if accept is not None and not accept(inside, rest):
                    continue
                if best is None or abs(c.z) > abs(best.comparison.z):
                    best = SegmentHit(dim, value, c, tuple(inside), tuple(rest), z_crit)
        if best is None:
            break
        hits.append(best)
        chosen = set(map(id, best.inside))
        remaining = [c for c in remaining if id(c) not in chosen]
    return hits


def _sums(
    cells: Sequence[Cell], dim: str, numerator: str, denominator: str
) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Per value of ``dim``: (numerator, denominator) summed over its cells; and both summed
    over every cell with a value. A value's rest is then the difference, so one pass over the
    cells serves every value. Summing each value's cells and its rest's anew took the
    detectors 0.34 s of CPU on 10 M events (2,880 cells), this 0.07 s."""
    per_value: dict[str, tuple[int, int]] = {}
    k_all = n_all = 0
    for cell in cells:
        value = cell.values.get(dim)
        if value is None:
            continue
        k, n = cell.counts.get(numerator, 0), cell.counts.get(denominator, 0)
        k_v, n_v = per_value.get(value, (0, 0))
        per_value[value] = (k_v + k, n_v + n)
        k_all += k
        n_all += n
    return per_value, k_all, n_all
