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
from wayline.journeymap.detectors.visits import Cell, subset, total, values_of

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
            for value in values_of(remaining, dim):
                inside, rest = subset(remaining, dim, value)
                c = Comparison(
                    total(inside, numerator),
                    total(inside, denominator),
                    total(rest, numerator),
                    total(rest, denominator),
                )
                if not is_finding(c, z_crit, direction, thresholds):
                    continue
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
