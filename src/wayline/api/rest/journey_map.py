"""``/api/v1/journey-map``: the customer journey map of the caller's workspace.

The query string says which period (``since``/``until`` or ``last=30d``), which customers
(``persona``, ``device``, ``channel``, ``segment=key=value``) and what to compare:
``compare=previous`` gives every figure its change against the previous period of the same
length; ``compare=<attribute>`` (``device``, ``channel``, ``persona``, ``customer_type``…)
draws one view per value side by side (``values=mobile,desktop`` picks which). The answer is the
map's documented JSON (``docs/journey-map.md``), or with ``format=csv|html|png|pdf`` a download
made by the map's own renderers (:mod:`wayline.journeymap.render`).

Maps come through the analytics cache (:mod:`wayline.web.cache`); the dashboard's ``/map`` page
(:mod:`wayline.web.map`) uses the same :func:`map_query` and :func:`journey_map_cached`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from wayline.analytics.backend import Backend
from wayline.analytics.params import parse_time
from wayline.api.errors import error_body
from wayline.api.rest.deps import Workspace
from wayline.config import Settings
from wayline.errors import ConfigError, InputError
from wayline.journeymap.build import (
    MAX_VIEWS,
    Condition,
    MapQuery,
    PainPointFinder,
    build_map,
    parse_condition,
)
from wayline.journeymap.model import JourneyMap, to_json
from wayline.journeymap.stages import load_mapping, user_mapping_path
from wayline.web.cache import Cached, cached_result

router = APIRouter(tags=["Journey map"])

FORMATS: Final = ("json", "csv", "html", "png", "pdf")
MEDIA_TYPES: Final = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "png": "image/png",
    "pdf": "application/pdf",
}
_LAST_RE = re.compile(r"^\s*(\d+)\s*([dw])\s*$")
#: What a side-by-side comparison can split customers by (the map's view attributes).
COMPARE_BY: Final = ("device", "channel", "persona", "customer_type", "country")


def map_query(
    workspace_id: str,
    *,
    since: str | None = None,
    until: str | None = None,
    last: str | None = None,
    compare: str | None = None,
    values: str | None = None,
    persona: str | None = None,
    device: str | None = None,
    channel: str | None = None,
    segment: list[str] | None = None,
    top: int = 5,
    pain_points: bool = True,
    now: datetime,
) -> MapQuery:
    """The map the user asked for (InputError naming the parameter at fault)."""
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if last is not None and last.strip():
        m = _LAST_RE.match(last)
        if not m or not 1 <= int(m[1]) * (7 if m[2] == "w" else 1) <= 36_500:
            raise InputError(f"cannot read last={last!r}; write 30d or 4w", field="last")
        days = int(m[1]) * (7 if m[2] == "w" else 1)
        # To the next full hour: "the last 30 days" asked twice in an hour is one cached map.
        end = end or now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start = end - timedelta(days=days)
    if start is not None and end is not None and start >= end:
        raise InputError("until must be after since", field="until")
    conditions: list[Condition] = []
    for text in segment or ():
        if text.strip():
            try:
                conditions.append(parse_condition(text))
            except InputError as exc:
                raise InputError(exc.message, field="segment") from None
    for key, value in (("persona", persona), ("device_type", device), ("channel", channel)):
        if value is not None and value.strip():
            conditions.append(Condition(key, value.strip()))
    compare = compare.strip() if compare and compare.strip() else None
    breakdown = None
    if compare is not None and compare != "previous":
        if compare not in COMPARE_BY:
            raise InputError(
                f"compare is 'previous' or one of {', '.join(COMPARE_BY)}", field="compare"
            )
        breakdown = compare
    chosen = tuple(v.strip() for v in (values or "").split(",") if v.strip())
    if chosen and breakdown is None:
        raise InputError("values needs compare=<attribute>", field="values")
    if len(chosen) > MAX_VIEWS:
        raise InputError(f"at most {MAX_VIEWS} values side by side", field="values")
    if not 1 <= top <= 20:
        raise InputError("top must be between 1 and 20", field="top")
    return MapQuery(
        workspace_id=workspace_id,
        since=start,
        until=end,
        conditions=tuple(conditions),
        breakdown=breakdown,
        breakdown_values=chosen,
        top=top,
        compare_previous=compare == "previous",
        with_pain_points=pain_points,
    )


def _pain_point_finder() -> PainPointFinder | None:
    try:
        from wayline.journeymap.findings import find_pain_points
    except ImportError:  # the detectors are an optional part of a build
        return None
    return find_pain_points


def _has_events(backend: Backend, workspace_id: str) -> bool:
    rows = backend.fetch("SELECT 1 FROM events WHERE workspace_id = ? LIMIT 1", [workspace_id])
    return bool(rows)


def empty_map(q: MapQuery, now: datetime) -> JourneyMap:
    """The map of a workspace without events: no views, and a note saying why."""
    until = q.until or now
    return JourneyMap(
        workspace_id=q.workspace_id,
        since=q.since or until,
        until=until,
        generated_at=now,
        views=(),
        pain_points_note="No events yet: import your store's data or connect its tracking.",
    )


def compute_map(backend: Backend, q: MapQuery, settings: Settings) -> JourneyMap:
    now = datetime.now(UTC)
    if not _has_events(backend, q.workspace_id):
        return empty_map(q, now)
    finder = _pain_point_finder() if q.with_pain_points else None
    try:
        journey_map = build_map(
            backend, q, load_mapping(settings.home), now=now, find_pain_points=finder
        )
    except InputError as exc:
        if exc.field is not None:
            raise
        # A period outside the workspace's events: say which end the caller should move.
        raise InputError(exc.message, field="since" if q.since else "until") from None
    if q.with_pain_points and finder is None:
        note = "Pain-point detection is not available."
        journey_map = replace(journey_map, pain_points_note=note)
    return journey_map


def _mapping_version(settings: Settings) -> str:
    # The owner's journeymap.yaml changes the map as much as new events do.
    try:
        st = user_mapping_path(settings.home).stat()
    except FileNotFoundError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def journey_map_cached(state: Any, q: MapQuery) -> Cached[JourneyMap]:
    """The map from the cache of the app whose ``state`` (with its settings) is given."""
    settings: Settings = state.settings
    key = ("journey-map", q, _mapping_version(settings))
    return cached_result(state, key, lambda b: compute_map(b, q, settings))


def render_map(journey_map: JourneyMap, fmt: str) -> bytes:
    """The map in one of :data:`FORMATS` (ConfigError when PNG/PDF cannot be made here)."""
    if fmt == "json":
        return orjson.dumps(to_json(journey_map))
    if fmt == "csv":
        from wayline.journeymap.render.csv import render_csv

        return render_csv(journey_map).encode()
    from wayline.journeymap.render.html import render_html

    html = render_html(journey_map)
    if fmt == "html":
        return html.encode()
    from wayline.journeymap.render.browser import render_in_browser

    return render_in_browser(html, "png" if fmt == "png" else "pdf")


def download(journey_map: JourneyMap, fmt: str) -> Response:
    """The map as a file to save; a 503 saying what is missing when PNG/PDF cannot be made."""
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}", field="format")
    try:
        data = render_map(journey_map, fmt)
    except ConfigError as exc:
        # Chromium or Playwright is missing on this server: nothing the caller did wrong, and
        # nothing a retry fixes until someone installs it.
        _, body = error_body(exc)
        body["code"] = "unavailable"
        return Response(orjson.dumps(body), 503, media_type="application/json")
    name = f"journey-map-{journey_map.since:%Y%m%d}-{journey_map.until:%Y%m%d}.{fmt}"
    return Response(
        data,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# ---------------------------------------------------------------------------------------------
# Response model: the map's JSON (journeymap.model.to_json), described for the OpenAPI document


Num = int | float | str | None


class MetricOut(BaseModel):
    value: Num = Field(description="Money is a decimal string.")
    unit: str = Field(description="count, rate, money, seconds or score.")
    previous: Num = Field(default=None, description="With compare=previous.")
    change: Num = None
    change_ratio: float | None = None


class ShareOut(BaseModel):
    name: str
    persons: MetricOut
    events: MetricOut
    touchpoint: str | None = None


class KpiOut(BaseModel):
    key: str
    label: str
    value: Num
    unit: str
    previous: Num = None
    change: Num = None
    change_ratio: float | None = None


class NotesOut(BaseModel):
    label: str | None
    goal: str | None
    notes: list[str]
    thoughts: list[str]
    feelings: list[str]
    ideas: list[str]


class EmotionOut(BaseModel):
    score: float | None
    responses: int
    source: str | None
    feelings: list[str]


class StageOut(BaseModel):
    stage: str
    label: str
    next_goal: str | None
    entered: MetricOut
    moved_on: MetricOut | None
    dropped: MetricOut | None
    move_on_rate: MetricOut | None
    sessions: MetricOut
    events: MetricOut
    median_time_in_stage_seconds: MetricOut
    median_time_to_next_seconds: MetricOut | None
    actions: list[ShareOut]
    touchpoints: list[ShareOut]
    channels: list[ShareOut]
    devices: list[ShareOut]
    drop_offs: list[ShareOut]
    kpis: list[KpiOut]
    notes: NotesOut
    emotion: EmotionOut


class FunnelStepViewOut(BaseModel):
    name: str
    role: str
    events: list[str]
    persons: MetricOut
    conversion: MetricOut
    dropped: MetricOut


class FlowOut(BaseModel):
    source: str
    target: str
    persons: int


class EvidenceOut(BaseModel):
    metric: str
    value: float
    baseline: float
    unit: str
    affected_customers: int
    revenue_at_stake: str
    since: str
    until: str
    segment: dict[str, str]
    detail: str


class SolutionOut(BaseModel):
    key: str = Field(description="The solution's id: POST /map/solutions/{key}/journey.")
    title: str
    description: str
    channel: str | None
    template: str | None
    expected_effect: str | None
    effort: str | None


class PainPointOut(BaseModel):
    kind: str
    title: str
    stage: str
    step: str | None
    severity: str
    evidence: EvidenceOut
    solutions: list[SolutionOut]


class ViewOut(BaseModel):
    label: str
    segment: dict[str, str]
    persons: MetricOut
    orders: MetricOut
    revenue: MetricOut
    stages: list[StageOut]
    funnel: list[FunnelStepViewOut]
    flows: list[FlowOut]
    pain_points: list[PainPointOut]


class UnknownEventOut(BaseModel):
    name: str
    events: int
    suggested_stage: str
    suggested_touchpoint: str


class JourneyMapOut(BaseModel):
    schema_version: int
    workspace_id: str
    since: str
    until: str
    previous_since: str | None
    previous_until: str | None
    generated_at: str
    currency: str | None
    mapping_sources: list[str]
    emotion_note: str
    pain_points_note: str
    views: list[ViewOut] = Field(description="One per segment compared; none without events.")
    unknown_events: list[UnknownEventOut]


@router.get(
    "/journey-map",
    response_model=JourneyMapOut,
    response_model_exclude_unset=True,
    summary="The customer journey map",
    responses={
        200: {
            "content": {MEDIA_TYPES[f]: {} for f in ("csv", "html", "png", "pdf")},
            "description": "The map (JSON), or a download with format=csv|html|png|pdf.",
        },
        503: {"description": "PNG/PDF asked for and no Chromium on this server."},
    },
)
def get_journey_map(
    ctx: Workspace,
    request: Request,
    since: Annotated[
        str | None, Query(max_length=64, description="Start (ISO date/time, UTC).")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=64, description="End, excluded (ISO date/time, UTC).")
    ] = None,
    last: Annotated[
        str | None, Query(max_length=16, description="The last N days/weeks: 30d, 4w.")
    ] = None,
    compare: Annotated[
        str | None,
        Query(
            max_length=32,
            description="'previous' (change vs the period before) or an attribute to draw "
            f"side by side: {', '.join(COMPARE_BY)}.",
        ),
    ] = None,
    values: Annotated[
        str | None,
        Query(max_length=500, description="With compare=<attribute>: which values (a,b)."),
    ] = None,
    persona: Annotated[str | None, Query(max_length=200)] = None,
    device: Annotated[str | None, Query(max_length=200)] = None,
    channel: Annotated[str | None, Query(max_length=200)] = None,
    segment: Annotated[
        list[str] | None, Query(description="key=value on the customer (repeatable).")
    ] = None,
    top: Annotated[int, Query(ge=1, le=20, description="Actions etc. per stage.")] = 5,
    pain_points: Annotated[bool, Query(description="Detect pain points.")] = True,
    format: Annotated[Literal["json", "csv", "html", "png", "pdf"], Query()] = "json",
) -> Any:
    """Stages with actions, touchpoints, KPIs, drop-offs, pain points with evidence and
    solutions; with ``format`` a file to download instead."""
    q = map_query(
        ctx.workspace_id,
        since=since,
        until=until,
        last=last,
        compare=compare,
        values=values,
        persona=persona,
        device=device,
        channel=channel,
        segment=segment,
        top=top,
        pain_points=pain_points,
        now=datetime.now(UTC),
    )
    journey_map = journey_map_cached(request.app.state, q).value
    if format != "json":
        return download(journey_map, format)
    return JourneyMapOut.model_validate(to_json(journey_map))
