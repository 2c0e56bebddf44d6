"""Sticky, deterministic assignment of a customer to a split branch or the holdout. Pure.

A customer's place in a split is a hash of (journey id, split step id, person id), mapped to a
point in [0, 1) and looked up in the cumulative weights. So:

- the same customer always lands in the same branch of the same split, in every version of the
  journey, on every re-entry, in the live runtime and in a simulation — no stored coin flips;
- two splits (or two journeys) are independent of one another, because the step id and the
  journey id are part of the hash;
- over many customers, the shares converge on the weights (SHA-256 is uniform enough for this).

The holdout is laid out first on the unit interval, so that adding or reweighting branches
never moves a customer into or out of the holdout as long as its weight is unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HOLDOUT = "holdout"

_SCALE = float(2**64)


def unit_point(*parts: str) -> float:
    """A uniform point in [0, 1) determined by ``parts``."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign(
    journey_id: str,
    step_id: str,
    person_id: str,
    branches: Sequence[tuple[str, float]],
    holdout: float = 0.0,
) -> str:
    """The branch name (or :data:`HOLDOUT`) for this customer at this split.

    Args:
        branches: (name, weight) pairs, weights positive and in any unit (percentages, ratios).
        holdout: the holdout's weight, in the same unit; 0 for none.
    """
    total = holdout + sum(weight for _, weight in branches)
    if total <= 0:
        raise ValueError("a split needs a positive total weight")
    point = unit_point(journey_id, step_id, person_id) * total
    if point < holdout:
        return HOLDOUT
    edge = holdout
    for name, weight in branches:
        edge += weight
        if point < edge:
            return name
    return branches[-1][0]  # float rounding at the very top of the interval
