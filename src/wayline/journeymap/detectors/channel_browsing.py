"""Traffic from a channel that browses but does not buy.

Per acquisition channel (the ``channel`` of the visit's events), the share of visits with a
purchase is compared with the other channels' (:mod:`.segments`), and a channel is reported
only if its visitors *do browse* — at least 80 % as many product views per visit as the rest —
so that a channel of bounces (a landing-page problem, not a buying one) is not mistaken for it.
Revenue at stake: the orders missing against the other channels' conversion × average order
value.
"""

from __future__ import annotations

from collections.abc import Sequence

from wayline.journeymap.detectors.base import Evidence, Finding, StoreView
from wayline.journeymap.detectors.segment_step import money
from wayline.journeymap.detectors.segments import scan
from wayline.journeymap.detectors.visits import Cell, cube, segment_customers, total

KIND = "channel_browses_no_buy"
BROWSING_RATIO = 0.8


def browses(inside: Sequence[Cell], rest: Sequence[Cell]) -> bool:
    per_visit = total(inside, "views") / max(1, total(inside, "visits"))
    rest_per_visit = total(rest, "views") / max(1, total(rest, "visits"))
    return per_visit >= BROWSING_RATIO * rest_per_visit and per_visit > 0


def detect(view: StoreView) -> list[Finding]:
    prof = view.profile
    if not prof.has("purchase"):
        return []
    cells = cube(view)
    c = view.context
    visit = prof.main_name("page_view") if prof.has("page_view") else "Visit"
    buy = prof.main_name("purchase")
    found = []
    for hit in scan(
        cells, ("channel",), "bought", "visits", "lower", view.thresholds, accept=browses
    ):
        cmp = hit.comparison
        views = total(hit.inside, "views") / max(1, cmp.n_a)
        rest_views = total(hit.rest, "views") / max(1, cmp.n_b)
        found.append(
            Finding(
                kind=KIND,
                title=f"Visitors from {hit.value} browse but do not buy",
                stage="awareness",
                step=f"{visit} → {buy}",
                step_events=(visit, buy),
                effect=1 - cmp.ratio,
                evidence=Evidence(
                    metric=f"share of visits with {buy}",
                    value=cmp.rate,
                    baseline=cmp.baseline,
                    unit="visits",
                    affected_customers=segment_customers(view, "channel", hit.value, "persons"),
                    revenue_at_stake=money(cmp.excess("lower"), prof.average_order_value),
                    since=c.since,
                    until=c.until,
                    segment={"channel": hit.value},
                    detail=(
                        f"{cmp.n_a} visits from {hit.value} viewed {views:.1f} products each "
                        f"(other channels {rest_views:.1f}) but {cmp.rate:.2%} bought, against "
                        f"{cmp.baseline:.2%} from the other channels."
                    ),
                    z_score=cmp.z,
                    sample_size=cmp.n_a,
                ),
            )
        )
    return found
