"""Friction after a step: errors and support contacts that follow it, and customers sent
backwards (loops), in a segment much more often than in the rest.

Three detectors share the shape (:func:`detect_errors`, :func:`detect_support`,
:func:`detect_loops`): a per-visit flag measured among the visits that reached a funnel step —

- **errors**: an event with an error role (``error``, ``checkout_error``, ``payment_failed``)
  whose furthest step reached before it is that step;
- **support**: the same with a ``support`` event;
- **loops**: after reaching checkout (or payment), an event of an earlier funnel step — back to
  the cart or the product pages, the back-and-forth of a form that rejects the customer.

Each is compared per segment with the rest (:mod:`.segments`): an error rate of 3 % is normal
noise in any store, but 45 % in one country is a bug. Revenue at stake: the extra flagged visits
× (purchase rate of the step's unflagged visits − that of flagged ones) × average order value.
The step is labelled with the event names that actually followed it (one small query).
"""

from __future__ import annotations

from collections.abc import Sequence

from wayline.journeymap.detectors.base import FUNNEL, Evidence, Finding, StoreView
from wayline.journeymap.detectors.segment_step import money, segment_label
from wayline.journeymap.detectors.segments import scan
from wayline.journeymap.detectors.visits import (
    BACK_FROM,
    Cell,
    cube,
    segment_customers,
    steps,
    summary,
    total,
)

ERRORS = "errors_after_step"
SUPPORT = "support_after_step"
LOOPS = "checkout_loop"


def followers(view: StoreView) -> dict[tuple[int, str], str]:
    """(rank, kind) → the most frequent event name of that kind following that rank."""
    return summary(view).followers


def _purchase_gap(cells: Sequence[Cell], flag: str, k: int) -> float:
    """Purchase rate of visits at rank ``k`` without the flag minus that of flagged visits."""
    n_flag, b_flag = total(cells, flag), total(cells, f"{flag}_bought")
    n_all, b_all = total(cells, f"has_{k}"), total(cells, f"has_{k}_bought")
    clean_n = n_all - n_flag
    if clean_n <= 0 or n_flag <= 0:
        return 0.0
    return max(0.0, (b_all - b_flag) / clean_n - b_flag / n_flag)


def _detect(view: StoreView, kind: str, prefix: str, ranks: Sequence[int]) -> list[Finding]:
    prof = view.profile
    cells = cube(view)
    c = view.context
    names = followers(view)
    label_kind = {"err": "an error", "sup": "a support contact", "back": "a step back"}[prefix]
    found = []
    for k in ranks:
        flag = f"{prefix}_{k}"
        if not cells or flag not in cells[0].counts:
            continue
        step_name = prof.main_name(FUNNEL[k - 1])
        after = names.get((k, prefix))
        if after is None:
            continue
        gap = _purchase_gap(cells, flag, k)
        for hit in scan(
            cells, prof.dimensions, flag, f"has_{k}", "higher", view.thresholds, family=len(ranks)
        ):
            cmp = hit.comparison
            label = segment_label(hit.dimension, hit.value)
            title = {
                "err": f"Visits with {label} hit {after} after {step_name}",
                "sup": f"Visits with {label} contact support after {step_name}",
                "back": f"{step_name} sends visits with {label} back to {after}",
            }[prefix]
            found.append(
                Finding(
                    kind=kind,
                    title=title,
                    stage=c.mapping.classify(step_name).stage,
                    step=f"{step_name} → {after}",
                    step_events=(step_name, after),
                    effect=min(10.0, cmp.ratio - 1),
                    evidence=Evidence(
                        metric=f"share of visits with {step_name} followed by {label_kind}",
                        value=cmp.rate,
                        baseline=cmp.baseline,
                        unit="visits",
                        affected_customers=segment_customers(
                            view, hit.dimension, hit.value, f"persons_{k}"
                        ),
                        revenue_at_stake=money(
                            cmp.excess("higher") * gap, prof.average_order_value
                        ),
                        since=c.since,
                        until=c.until,
                        segment={hit.dimension: hit.value},
                        detail=(
                            f"{cmp.k_a} of {cmp.n_a} visits with {label} that reached "
                            f"{step_name} were followed by {label_kind} (mostly {after}): "
                            f"{cmp.rate:.1%} against {cmp.baseline:.1%} elsewhere; such visits "
                            f"buy {gap:.0%} less often."
                        ),
                        z_score=cmp.z,
                        sample_size=cmp.n_a,
                    ),
                )
            )
    return found


def _ranks(view: StoreView) -> list[int]:
    ranks = sorted({i for i, _ in steps(view)})
    return ranks


def detect_errors(view: StoreView) -> list[Finding]:
    return _detect(view, ERRORS, "err", _ranks(view))


def detect_support(view: StoreView) -> list[Finding]:
    return _detect(view, SUPPORT, "sup", _ranks(view))


def detect_loops(view: StoreView) -> list[Finding]:
    return _detect(view, LOOPS, "back", [k for k in BACK_FROM if k in _ranks(view)])
