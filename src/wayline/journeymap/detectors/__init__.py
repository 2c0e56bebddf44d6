"""Pain-point detectors: one module per kind of problem, each a small query runner.

Every detector takes a :class:`~.base.StoreView` (backend, context, store profile) and returns
:class:`~.base.Finding` values. Each one builds its SQL as data, runs it through the backend,
and decides in a pure function with a statistical test (:mod:`.stats`), so the decisions are
tested without a database and the queries are tested against one. They find a store's steps
through the stage mapping's roles, never through event names.

=========================  ====================================================================
``segment_step_dropoff``   a segment converting much worse at a step than the rest
``incident``               a step whose conversion drops for some days
``checkout_loop``          customers sent backwards from checkout or payment
``errors_after_step``      error events following a step, in a segment
``support_after_step``     support contacts following a step, in a segment
``slow_conversion``        a segment taking unusually long to buy
``product_content``        products without reviews or with thin descriptions converting worse
``churn_after_bad_experience``  customers who do not come back after a late delivery, a refund…
``channel_browses_no_buy`` a channel whose visitors browse but do not buy
=========================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Callable

from wayline.journeymap.detectors import (
    channel_browsing,
    churn,
    friction,
    incident,
    product_content,
    segment_step,
    slow_conversion,
)
from wayline.journeymap.detectors.base import (
    DetectionContext,
    Evidence,
    Finding,
    Severity,
    StoreProfile,
    StoreView,
)
from wayline.journeymap.detectors.stats import Thresholds

Detector = Callable[[StoreView], list[Finding]]

#: Every detector, by the kind of pain point it reports.
DETECTORS: dict[str, Detector] = {
    segment_step.KIND: segment_step.detect,
    incident.KIND: incident.detect,
    friction.LOOPS: friction.detect_loops,
    friction.ERRORS: friction.detect_errors,
    friction.SUPPORT: friction.detect_support,
    slow_conversion.KIND: slow_conversion.detect,
    product_content.KIND: product_content.detect,
    churn.KIND: churn.detect,
    channel_browsing.KIND: channel_browsing.detect,
}

__all__ = [
    "DETECTORS",
    "DetectionContext",
    "Detector",
    "Evidence",
    "Finding",
    "Severity",
    "StoreProfile",
    "StoreView",
    "Thresholds",
]
