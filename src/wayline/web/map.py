"""The dashboard's journey map: ``/map``, its downloads, and "Create journey" from a solution.

- ``GET /map`` draws the map of the logged-in workspace: stage lanes (what customers do, where,
  drop-offs, time, KPIs with their change against the previous period, feelings), the funnel
  and the stage Sankey (the SVG of :mod:`wayline.journeymap.render.svg`, the same pictures as
  the HTML export), and the pain points with their evidence, money at stake and solutions. A
  GET form switches persona / device / channel and the period, and compares two segments side
  by side. The map comes from the analytics cache, built by the same
  :func:`~wayline.api.rest.journey_map.map_query` as ``GET /api/v1/journey-map``.
- ``GET /map/download.{html,png,pdf,csv,json}`` saves the map drawn with the same options, made
  by the map's own renderers.
- ``POST /map/solutions/{solution_id}/journey`` (CSRF) turns a solution of the library
  (:mod:`wayline.journeymap.solutions`) into a draft journey of this workspace and opens it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from wayline.api.rest.journey_map import COMPARE_BY, download, journey_map_cached, map_query
from wayline.errors import InputError, NotFound
from wayline.journeymap.build import MapQuery
from wayline.journeymap.model import JourneyMap, JourneyView, Metric
from wayline.journeymap.render import format as fmt
from wayline.journeymap.render.html import STAGE_COLORS
from wayline.journeymap.render.svg import emotion_svg, funnel_svg, sankey_svg
from wayline.journeymap.solutions import load_library
from wayline.journeys.entry import JourneyStatus
from wayline.journeys.runtime.catalog import JourneyCatalog
from wayline.web.auth import Session, check_csrf
from wayline.web.render import page

router = APIRouter(include_in_schema=False)

#: The map's GET options, as the form and the download links carry them.
OPTIONS = ("since", "until", "persona", "device", "channel", "compare", "values")
Opt = Annotated[str | None, Query(max_length=200)]


def _options(**given: str | None) -> dict[str, str]:
    return {k: v.strip() for k, v in given.items() if v is not None and v.strip()}


def page_query(workspace_id: str, options: dict[str, str]) -> MapQuery:
    """The map the page shows for these options (none: the default view)."""
    return map_query(workspace_id, now=datetime.now(UTC), **options)  # type: ignore[arg-type]


def _helpers(m: JourneyMap) -> dict[str, Any]:
    """What the template needs to show figures: the same formatting as the HTML export."""
    currency = m.currency

    def chg(metric: Metric | None, higher_is_better: bool = True) -> Markup:
        text = fmt.change(metric, currency)
        if not text:
            return Markup("")
        direction = fmt.direction(metric, higher_is_better)
        css = {"good": "delta up", "bad": "delta down"}.get(direction, "muted")
        return Markup('<span class="{}">{}</span>').format(css, text)

    def at_stake(view: JourneyView) -> str:
        total = sum((p.evidence.revenue_at_stake for p in view.pain_points), Decimal("0.00"))
        return fmt.money(total, currency)

    return {
        "value": lambda metric: fmt.value(metric, currency),
        "chg": chg,
        "label": fmt.label,
        "money": lambda v: fmt.money(v, currency),
        "ev_value": lambda e, v: fmt.evidence_number(e.metric, e.unit, v, e.baseline),
        "at_stake": at_stake,
        "funnel_svg": lambda steps: Markup(funnel_svg(steps)),
        "sankey_svg": lambda flows: Markup(sankey_svg(flows)),
        "emotion_svg": lambda stages: Markup(emotion_svg(stages)),
        "lower_is_better": fmt.LOWER_IS_BETTER,
        "stage_colors": dict(STAGE_COLORS),
    }


def _segment_choices(m: JourneyMap) -> dict[str, list[str]]:
    """Devices and channels seen in the map, offered as suggestions in the switcher."""
    devices: set[str] = set()
    channels: set[str] = set()
    for view in m.views:
        for stage in view.stages:
            devices.update(d.name for d in stage.devices)
            channels.update(c.name for c in stage.channels)
    return {"devices": sorted(devices), "channels": sorted(channels)}


@router.get("/map")
def map_page(
    request: Request,
    session: Session,
    since: Opt = None,
    until: Opt = None,
    persona: Opt = None,
    device: Opt = None,
    channel: Opt = None,
    compare: Opt = None,
    values: Opt = None,
) -> Response:
    options = _options(
        since=since,
        until=until,
        persona=persona,
        device=device,
        channel=channel,
        compare=compare,
        values=values,
    )
    try:
        q = page_query(session.workspace_id, options)
    except InputError as exc:
        return page(
            request,
            "map.html",
            session,
            title="Journey map",
            m=None,
            error=str(exc),
            options=options,
            compare_by=COMPARE_BY,
            download_query="",
            status_code=400,
        )
    cached = journey_map_cached(request.app.state, q)
    m = cached.value
    return page(
        request,
        "map.html",
        session,
        title="Journey map",
        m=m,
        error=None,
        options=options,
        compare_by=COMPARE_BY,
        download_query=urlencode(options),
        cache_state=cached.state,
        computed_at=datetime.fromtimestamp(cached.computed_at, UTC),
        choices=_segment_choices(m),
        **_helpers(m),
    )


@router.get("/map/download.{kind}")
def map_download(
    request: Request,
    session: Session,
    kind: str,
    since: Opt = None,
    until: Opt = None,
    persona: Opt = None,
    device: Opt = None,
    channel: Opt = None,
    compare: Opt = None,
    values: Opt = None,
) -> Response:
    # A plain (not async) route: PNG and PDF drive a browser for seconds, in a worker thread.
    options = _options(
        since=since,
        until=until,
        persona=persona,
        device=device,
        channel=channel,
        compare=compare,
        values=values,
    )
    if kind not in ("html", "png", "pdf", "csv", "json"):
        raise NotFound(f"no download of the map as {kind!r}; use html, png, pdf, csv or json")
    q = page_query(session.workspace_id, options)
    return download(journey_map_cached(request.app.state, q).value, kind)


@router.post("/map/solutions/{solution_id}/journey")
async def create_journey_from_solution(
    request: Request, session: Session, solution_id: str
) -> Response:
    await check_csrf(request, session)
    solution = load_library().solutions.get(solution_id)
    if solution is None:
        raise NotFound(f"no solution {solution_id!r} in the library")
    document = solution.journey_document()
    if document is None:
        raise InputError(f"{solution.title!r} is not a journey: do it by hand", field="solution")
    catalog = JourneyCatalog(request.app.state.db)
    template_id = str(document.get("id", ""))
    existing = {j.journey_id: j for j in catalog.summaries(session.workspace_id)}
    if template_id in existing and existing[template_id].status != JourneyStatus.ARCHIVED:
        # Made before (and perhaps edited since): open it rather than overwrite the owner's work.
        return RedirectResponse(f"/journeys/{template_id}", status_code=303)
    journey_id = catalog.save_draft(
        session.workspace_id, document, source=solution.journey or solution_id
    )
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)
