"""The bridge from the pain-point detectors to the map.

:func:`find_pain_points` runs :func:`wayline.journeymap.painpoints.detect_pain_points` for one
view of the map (its period and segment) and turns each ``PainPoint`` into the map's own
:class:`~wayline.journeymap.model.PainPointView`, so that the map's JSON schema and renderers
do not change when the detectors grow new fields. Solutions are read by their public fields; the
journey template file of a solution is shown where the library has one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from wayline.analytics.backend import Backend
from wayline.journeymap.build import CUSTOMER_TYPE, MapQuery
from wayline.journeymap.model import EvidenceView, PainPointView, SolutionView
from wayline.journeymap.stages import StageMapping

log = logging.getLogger(__name__)


def detection_segment(segment: Mapping[str, str]) -> dict[str, str]:
    """The map's view conditions as the detectors' segment keys (``persona`` is the profile
    trait ``traits.persona``; ``customer_type`` has no detector equivalent and is left out)."""
    out: dict[str, str] = {}
    for key, value in segment.items():
        if key == CUSTOMER_TYPE:
            continue
        if key == "persona":
            key = "traits.persona"
        elif key.startswith("trait."):
            key = "traits." + key.removeprefix("trait.")
        out[key] = value
    return out


def _text(obj: Any, *names: str) -> str | None:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None and value != "":
            return str(value)
    return None


def solution_view(s: Any) -> SolutionView:
    # The template's file name (in wayline/journeymap/solutions/journeys/), not a path on this
    # machine: maps are shared and snapshotted.
    template = _text(s, "journey", "template", "journey_template")
    return SolutionView(
        key=_text(s, "key", "id", "name") or "solution",
        title=_text(s, "title", "name") or "",
        description=_text(s, "description", "summary", "text") or "",
        channel=_text(s, "channel"),
        template=template,
        expected_effect=_text(s, "expected_effect"),
        effort=_text(s, "effort"),
    )


def pain_point_view(p: Any) -> PainPointView:
    e = p.evidence
    return PainPointView(
        kind=str(p.kind),
        title=str(p.title),
        stage=str(p.stage),
        step=p.step,
        severity=str(p.severity),
        evidence=EvidenceView(
            metric=str(e.metric),
            value=float(e.value),
            baseline=float(e.baseline),
            unit=str(e.unit),
            affected_customers=int(e.affected_customers),
            revenue_at_stake=Decimal(e.revenue_at_stake),
            since=e.since,
            until=e.until,
            segment=dict(e.segment),
            detail=str(e.detail),
        ),
        solutions=tuple(solution_view(s) for s in p.solutions),
    )


def find_pain_points(
    backend: Backend,
    mapping: StageMapping,
    q: MapQuery,
    since: datetime,
    until: datetime,
    segment: Mapping[str, str],
) -> Sequence[PainPointView]:
    """The pain points of one view, ranked by revenue at stake (highest first)."""
    from wayline.journeymap.painpoints import DetectionContext, detect_pain_points

    seg = detection_segment(segment)
    context = DetectionContext(
        workspace_id=q.workspace_id,
        since=since,
        until=until,
        mapping=mapping,
        segment=seg or None,
    )
    found = detect_pain_points(backend, context)
    views = [pain_point_view(p) for p in found]
    return sorted(views, key=lambda v: v.evidence.revenue_at_stake, reverse=True)
