"""Pain points: problems the store's own data shows, each with its evidence and solutions.

:func:`detect_pain_points` runs every detector (:mod:`wayline.journeymap.detectors`) on one
store and period, and returns :class:`PainPoint` values ranked by **revenue at stake**, highest
first. Each carries :class:`Evidence` — the metric, its value, the baseline it is compared with,
the customers affected, the revenue at stake, the time range and the segment — and the
solutions the library (:mod:`wayline.journeymap.solutions`) suggests for its kind.

**Severity** is decided here, the same way for every kind, from the revenue at stake as a share
of the period's revenue and from the size of the gap:

- ``high``: at least 2 % of the period's revenue and a gap of at least 30 %;
- ``medium``: at least 0.5 % of the revenue;
- ``low``: anything else that passed its detector's test.

A detector may cap its kind (a slow conversion delays revenue rather than losing it: at most
medium). Every finding has already passed its detector's significance test with a
multiple-comparisons guard, so a store without problems yields none or a few low ones.

**Related findings are merged.** One problem often shows in several detectors: French
checkouts that fail validation show as errors after checkout, as loops back to the cart, and as
a lower checkout → payment rate in France. Findings for the same segment from the same step
are merged into the most specific one (errors, then loops, then support, then the step drop);
the others are named in its ``detail``. A channel found by the browse-but-do-not-buy detector is
not reported again as a step drop-off of that channel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from wayline.analytics.backend import Backend
from wayline.journeymap.detectors import DETECTORS, Detector
from wayline.journeymap.detectors.base import (
    DetectionContext,
    Evidence,
    Finding,
    Severity,
    StoreView,
)
from wayline.journeymap.detectors.stats import Thresholds
from wayline.journeymap.solutions import Solution, SolutionLibrary, load_library

__all__ = [
    "DetectionContext",
    "Evidence",
    "PainPoint",
    "Severity",
    "Solution",
    "Thresholds",
    "detect_pain_points",
    "rank",
    "severity_of",
]

log = logging.getLogger(__name__)

HIGH_REVENUE_SHARE = Decimal("0.02")
MEDIUM_REVENUE_SHARE = Decimal("0.005")
HIGH_EFFECT = 0.3
_SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2}
#: Which kind explains a merged group best (lower first).
_SPECIFICITY = (
    "errors_after_step",
    "checkout_loop",
    "support_after_step",
    "segment_step_dropoff",
)


@dataclass(frozen=True)
class PainPoint:
    """A problem on the journey map: what, where (``stage``, ``step``), how bad, the evidence,
    and what to do about it."""

    kind: str
    title: str
    stage: str
    step: str | None
    severity: Severity
    evidence: Evidence
    solutions: tuple[Solution, ...]
    step_events: tuple[str, ...] = ()
    """The store's event names of the step (from, to)."""


def severity_of(finding: Finding, period_revenue: Decimal) -> Severity:
    """Pure: the severity of a finding (see the module docstring)."""
    at_stake = finding.evidence.revenue_at_stake
    share = at_stake / period_revenue if period_revenue > 0 else Decimal(0)
    if share >= HIGH_REVENUE_SHARE and finding.effect >= HIGH_EFFECT:
        level: Severity = "high"
    elif share >= MEDIUM_REVENUE_SHARE:
        level = "medium"
    else:
        level = "low"
    if _SEVERITY_ORDER[level] > _SEVERITY_ORDER[finding.max_severity]:
        return finding.max_severity
    return level


def merge_related(findings: Sequence[Finding]) -> list[Finding]:
    """Pure: one finding per (segment, step start) among the segment kinds; channels found by
    the browsing detector are not repeated as step drop-offs (see the module docstring)."""
    browsing_channels = {
        f.evidence.segment.get("channel") for f in findings if f.kind == "channel_browses_no_buy"
    }
    kept: list[Finding] = []
    groups: dict[tuple[tuple[tuple[str, str], ...], str], list[Finding]] = {}
    for f in findings:
        if f.kind == "segment_step_dropoff" and (
            f.evidence.segment.get("channel") in browsing_channels - {None}
        ):
            continue
        if f.kind in _SPECIFICITY and f.evidence.segment and f.step_events:
            key = (tuple(sorted(f.evidence.segment.items())), f.step_events[0])
            groups.setdefault(key, []).append(f)
        else:
            kept.append(f)
    for group in groups.values():
        group.sort(key=lambda f: (_SPECIFICITY.index(f.kind), -abs(f.evidence.z_score)))
        head, others = group[0], group[1:]
        if others:
            also = "; ".join(f"also {o.title.lower()}" for o in others)
            stake = max((o.evidence.revenue_at_stake for o in group), default=Decimal(0))
            head = replace(
                head,
                evidence=replace(
                    head.evidence,
                    detail=f"{head.evidence.detail} ({also}.)",
                    revenue_at_stake=stake,
                ),
            )
        kept.append(head)
    return kept


def rank(
    findings: Iterable[Finding], period_revenue: Decimal, library: SolutionLibrary
) -> list[PainPoint]:
    """Pure: findings → pain points with severity and solutions, by revenue at stake
    (descending; ties: the stronger evidence first)."""
    points = [
        PainPoint(
            kind=f.kind,
            title=f.title,
            stage=f.stage,
            step=f.step,
            severity=severity_of(f, period_revenue),
            evidence=f.evidence,
            solutions=library.for_pain_point(f.kind, f.evidence.segment),
            step_events=f.step_events,
        )
        for f in merge_related(list(findings))
    ]
    points.sort(
        key=lambda p: (-p.evidence.revenue_at_stake, -abs(p.evidence.z_score), p.kind, p.title)
    )
    return points


def detect_pain_points(
    backend: Backend,
    context: DetectionContext,
    *,
    detectors: Mapping[str, Detector] | None = None,
    library: SolutionLibrary | None = None,
) -> list[PainPoint]:
    """Every pain point the store's events show in ``context``'s period, ranked by revenue at
    stake (descending).

    Args:
        backend: where the ``events`` table is (DuckDB or PostgreSQL).
        context: workspace, period, stage mapping, optional segment and thresholds.
        detectors: the detectors to run (default: all, :data:`~.detectors.DETECTORS`).
        library: the solutions library (default: the one shipped with Wayline).
    """
    view = StoreView(backend, context)
    findings: list[Finding] = []
    for name, detector in (detectors if detectors is not None else DETECTORS).items():
        found = detector(view)
        log.debug("detector %s: %d findings", name, len(found))
        findings.extend(found)
    return rank(findings, view.profile.revenue, library or load_library())
