"""A segment converting much worse at one funnel step than the rest (e.g. mobile checkout).

For every consecutive pair of funnel steps the store tracks (product view → add to cart →
checkout → payment → purchase) and every segment (device type, OS, channel, country, profile
traits), the share of visits at the first step that reach the second is compared with the rest
of the visits (:mod:`.segments`). Revenue at stake: the visits lost beyond the baseline rate ×
the store's rate from the second step to a purchase × the average order value.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from wayline.journeymap.detectors.base import FUNNEL, Evidence, Finding, StoreView
from wayline.journeymap.detectors.segments import scan
from wayline.journeymap.detectors.visits import Cell, cube, segment_customers, steps, total

KIND = "segment_step_dropoff"


def money(value: float, aov: Decimal) -> Decimal:
    """Lost orders × average order value, to the cent."""
    return (Decimal(str(round(max(0.0, value), 4))) * aov).quantize(Decimal("0.01"))


def to_purchase(cells: Sequence[Cell], rank: int) -> float:
    """Share of visits at funnel ``rank`` that end in a purchase (store-wide)."""
    n = total(cells, f"has_{rank}")
    return total(cells, f"has_{rank}_bought") / n if n else 0.0


def segment_label(dim: str, value: str) -> str:
    return f"{dim.removeprefix('traits.')} = {value}"


def detect(view: StoreView) -> list[Finding]:
    cells = cube(view)
    prof = view.profile
    pairs = steps(view)
    dims = prof.dimensions
    c = view.context
    found: list[Finding] = []
    for i, j in pairs:
        a, b = prof.main_name(FUNNEL[i - 1]), prof.main_name(FUNNEL[j - 1])
        for hit in scan(
            cells, dims, f"step_{i}_{j}", f"has_{i}", "lower", view.thresholds, family=len(pairs)
        ):
            cmp = hit.comparison
            lost_orders = cmp.excess("lower") * to_purchase(cells, j)
            label = segment_label(hit.dimension, hit.value)
            found.append(
                Finding(
                    kind=KIND,
                    title=f"Visits with {label} are lost between {a} and {b}",
                    stage=c.mapping.classify(b).stage,
                    step=f"{a} → {b}",
                    step_events=(a, b),
                    effect=1 - cmp.ratio,
                    evidence=Evidence(
                        metric=f"share of visits with {a} that reach {b}",
                        value=cmp.rate,
                        baseline=cmp.baseline,
                        unit="visits",
                        affected_customers=segment_customers(
                            view, hit.dimension, hit.value, f"persons_{i}"
                        ),
                        revenue_at_stake=money(lost_orders, prof.average_order_value),
                        since=c.since,
                        until=c.until,
                        segment={hit.dimension: hit.value},
                        detail=(
                            f"{cmp.k_a} of {cmp.n_a} visits with {label} went on from {a} to "
                            f"{b} ({cmp.rate:.1%}), against {cmp.baseline:.1%} for the other "
                            f"{cmp.n_b} visits; about {cmp.excess('lower'):.0f} visits lost."
                        ),
                        z_score=cmp.z,
                        sample_size=cmp.n_a,
                    ),
                )
            )
    return found
