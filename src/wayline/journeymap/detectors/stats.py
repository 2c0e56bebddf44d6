"""The statistics every detector decides with: two-proportion z-tests, Wilson intervals, and
a Bonferroni guard against multiple comparisons.

A detector compares a rate in one group (a segment, a date range, products without reviews)
with the same rate in the rest. With dozens of segments and steps scanned, some difference is
always "significant" by chance at the usual 5 %; so each detector counts the comparisons it
makes and requires ``|z|`` above the one-sided Bonferroni critical value for a family-wise
error rate ``alpha`` (1 % by default), and the affected group's Wilson interval at that
confidence to exclude the baseline (the z-test alone is too generous for small groups with few
events). On top of significance a finding needs a minimum sample
(the affected group's units) and a minimum effect (a relative change worth acting on): with
millions of events, a 2 % difference can be significant and still not matter.

Pure functions, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

_NORMAL = NormalDist()

Direction = Literal["lower", "higher"]


def two_proportion_z(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Pooled two-proportion z statistic of ``k_a/n_a`` against ``k_b/n_b`` (0 if undefined)."""
    if n_a <= 0 or n_b <= 0:
        return 0.0
    pooled = (k_a + k_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return (k_a / n_a - k_b / n_b) / se if se > 0 else 0.0


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k/n`` (``(0, 1)`` when ``n`` is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact bounds at the edges: rounding must not exclude a rate of 0 or 1 from its interval.
    lo = 0.0 if k == 0 else max(0.0, min(p, centre - half))
    hi = 1.0 if k == n else min(1.0, max(p, centre + half))
    return lo, hi


def critical_z(alpha: float, tests: int) -> float:
    """One-sided critical z for ``tests`` comparisons at family-wise error rate ``alpha``."""
    return _NORMAL.inv_cdf(1 - alpha / max(1, tests))


@dataclass(frozen=True)
class Comparison:
    """A rate in the affected group (``k_a`` of ``n_a``) against the baseline (``k_b``/``n_b``)."""

    k_a: int
    n_a: int
    k_b: int
    n_b: int

    @property
    def rate(self) -> float:
        return self.k_a / self.n_a if self.n_a else 0.0

    @property
    def baseline(self) -> float:
        return self.k_b / self.n_b if self.n_b else 0.0

    @property
    def z(self) -> float:
        return two_proportion_z(self.k_a, self.n_a, self.k_b, self.n_b)

    @property
    def ratio(self) -> float:
        """Affected rate / baseline rate (``inf`` when the baseline is 0 and the rate is not)."""
        if self.baseline > 0:
            return self.rate / self.baseline
        return math.inf if self.rate > 0 else 1.0

    def excess(self, direction: Direction) -> float:
        """Units of the affected group on the bad side of the baseline: lost conversions for a
        rate that should be high, extra failures for a rate that should be low."""
        gap = self.baseline - self.rate if direction == "lower" else self.rate - self.baseline
        return max(0.0, gap * self.n_a)


@dataclass(frozen=True)
class Thresholds:
    """What a difference needs to be reported."""

    alpha: float = 0.01
    """Family-wise false-alarm rate per detector (Bonferroni over its comparisons)."""
    min_units: int = 30
    """Smallest affected group (units in the rate's denominator)."""
    min_effect: float = 0.25
    """Smallest relative change: the rate at most ``1 - min_effect`` of the baseline (lower),
    or at least ``1 + min_effect`` times it (higher)."""
    min_excess: float = 10.0
    """Fewest units lost (or extra failures) for a finding to be worth showing."""


def is_finding(c: Comparison, z_crit: float, direction: Direction, t: Thresholds) -> bool:
    """Whether ``c`` is significantly and materially worse than its baseline."""
    if c.n_a < t.min_units or c.n_b < t.min_units or c.excess(direction) < t.min_excess:
        return False
    # The Wilson interval at the same confidence must exclude the baseline too: the z-test's
    # normal approximation is too generous with a small group and few events.
    lo, hi = wilson(c.k_a, c.n_a, z_crit)
    if direction == "lower":
        return c.z <= -z_crit and c.ratio <= 1 - t.min_effect and hi < c.baseline
    # A baseline of 0 and an observed rate above it counts as an infinite ratio.
    return c.z >= z_crit and c.ratio >= 1 + t.min_effect and lo > c.baseline
