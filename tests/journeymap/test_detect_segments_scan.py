"""The segment scan sums each dimension's cells in one pass; it finds exactly what summing each
value's cells and its rest's separately (the reference below) finds."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.journeymap.detectors.segments import (
    Accept,
    SegmentHit,
    comparisons,
    scan,
)
from wayline.journeymap.detectors.stats import (
    Comparison,
    Direction,
    Thresholds,
    critical_z,
    is_finding,
)
from wayline.journeymap.detectors.visits import Cell, subset, total, values_of

DIMS = ("device_type", "country", "channel")


def reference_scan(
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
    """The scan as first written: each value's cells and its rest's summed anew."""
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


def _cell(draw: st.DrawFn) -> Cell:
    values = {
        "device_type": draw(st.sampled_from([None, "mobile", "desktop", "tablet"])),
        "country": draw(st.sampled_from([None, "DE", "FR", "NL"])),
        "channel": draw(st.sampled_from([None, "ads", "email", "organic", "social"])),
    }
    n = draw(st.integers(0, 400))
    # Some cells lack a measure altogether (a count of 0 is left out of a cell's counts).
    counts = {"n": n, "k": draw(st.integers(0, n))} if draw(st.booleans()) or n else {}
    return Cell(values, counts)


cells_st = st.lists(st.composite(_cell)(), max_size=60)


def few_ads(inside: Sequence[Cell], rest: Sequence[Cell]) -> bool:
    """An extra condition that needs the cells themselves."""
    return total(inside, "n") <= 2 * max(1, total(rest, "n"))


@settings(max_examples=300, deadline=None)
@given(
    cells=cells_st,
    direction=st.sampled_from(["lower", "higher"]),
    min_units=st.integers(0, 60),
    min_effect=st.sampled_from([0.0, 0.1, 0.25]),
    with_accept=st.booleans(),
)
def test_scan_finds_what_the_reference_finds(
    cells: list[Cell], direction: Direction, min_units: int, min_effect: float, with_accept: bool
) -> None:
    t = Thresholds(alpha=0.2, min_units=min_units, min_effect=min_effect, min_excess=1.0)
    accept = few_ads if with_accept else None
    got = scan(cells, DIMS, "k", "n", direction, t, accept=accept)
    want = reference_scan(cells, DIMS, "k", "n", direction, t, accept=accept)
    assert got == want
