"""The statistics the detectors decide with."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline.journeymap.detectors.stats import (
    Comparison,
    Thresholds,
    critical_z,
    is_finding,
    two_proportion_z,
    wilson,
)

counts = st.integers(min_value=1, max_value=5000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


def test_two_proportion_z_known_value() -> None:
    # 30/100 vs 50/100: pooled 0.4, se = sqrt(0.24 * 0.02) = 0.0693 → z = -2.887
    assert two_proportion_z(30, 100, 50, 100) == pytest.approx(-2.8868, abs=1e-3)
    assert two_proportion_z(0, 0, 5, 10) == 0.0
    assert two_proportion_z(10, 10, 10, 10) == 0.0


@given(counts, counts)
def test_z_is_antisymmetric(a: tuple[int, int], b: tuple[int, int]) -> None:
    assert two_proportion_z(*a, *b) == pytest.approx(-two_proportion_z(*b, *a), abs=1e-9)


@given(counts)
def test_wilson_contains_the_rate(a: tuple[int, int]) -> None:
    k, n = a
    lo, hi = wilson(k, n)
    assert 0 <= lo <= k / n <= hi <= 1


def test_critical_z_grows_with_the_number_of_tests() -> None:
    assert critical_z(0.05, 1) == pytest.approx(1.645, abs=1e-3)
    assert critical_z(0.01, 100) > critical_z(0.01, 10) > critical_z(0.01, 1)


def test_is_finding_needs_significance_effect_and_size() -> None:
    t = Thresholds(alpha=0.01, min_units=30, min_effect=0.25, min_excess=5)
    z = critical_z(0.01, 10)
    assert is_finding(Comparison(100, 1000, 400, 1000), z, "lower", t)
    # significant but small: 38 % vs 40 %
    assert not is_finding(Comparison(38_000, 100_000, 40_000, 100_000), z, "lower", t)
    # large but too few units
    assert not is_finding(Comparison(1, 20, 400, 1000), z, "lower", t)
    # the wrong direction
    assert not is_finding(Comparison(400, 1000, 100, 1000), z, "lower", t)
    assert is_finding(Comparison(400, 1000, 100, 1000), z, "higher", t)


def test_ratio_and_excess() -> None:
    c = Comparison(10, 100, 30, 100)
    assert c.ratio == pytest.approx(1 / 3)
    assert c.excess("lower") == pytest.approx(20)
    assert c.excess("higher") == 0
    assert math.isinf(Comparison(5, 100, 0, 100).ratio)
