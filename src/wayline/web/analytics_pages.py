"""The dashboard's analytics pages: ``/funnels`` (bars with conversion and drop-off per step,
and the breakdown table), ``/paths`` (a Sankey of the paths customers take) and ``/retention``
(the cohort heat map).

Each page is a GET form (so a view can be bookmarked and shared) whose fields are the REST
API's query parameters: the page parses them with the same functions
(:mod:`wayline.api.rest.analytics`), gets the result from the same analytics cache, and draws
it as inline SVG made here on the server — no script, nothing to download, readable on a
phone. Bad input redraws the form with the message, never an error page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from wayline.analytics.funnels import FunnelQuery, FunnelStepResult
from wayline.analytics.paths import PathsQuery, PathsResult
from wayline.analytics.retention import RetentionQuery, RetentionResult
from wayline.api.rest.analytics import (
    funnel_query,
    paths_query,
    retention_query,
    run_funnel_cached,
    run_paths_cached,
    run_retention_cached,
)
from wayline.display import duration, percent
from wayline.errors import InputError
from wayline.web.auth import Session
from wayline.web.cache import Cached
from wayline.web.render import page

router = APIRouter(include_in_schema=False)

DEFAULT_FUNNEL = "Product Viewed,Product Added,Checkout Started,Order Completed"
Opt = Annotated[str | None, Query(max_length=4000)]
T = TypeVar("T")


def _n(value: int) -> str:
    return f"{value:,}"


def _when(cached: Cached[Any]) -> dict[str, Any]:
    return {
        "computed_at": datetime.fromtimestamp(cached.computed_at, UTC),
        "cache_state": cached.state,
    }


def _run(build: Callable[[], T]) -> tuple[T | None, str | None]:
    try:
        return build(), None
    except InputError as exc:
        return None, str(exc)


# ---------------------------------------------------------------------------------------------
# Charts (inline SVG; every text escaped)


def funnel_bars_svg(steps: Sequence[FunnelStepResult], width: int = 720) -> Markup:
    """One bar per step, as wide as the step's share of step 1, with the drop-off beside it."""
    row, bar_h, left = 58, 26, 8
    height = row * len(steps) + 8
    top = steps[0].users if steps else 0
    parts = [
        f'<svg class="funnel-bars" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Funnel: customers reaching each step">'
    ]
    usable = width - left - 8
    for i, s in enumerate(steps):
        y = 8 + i * row
        w = usable * (s.users / top) if top else 0
        dropped = (
            f" · {_n(s.dropped)} dropped ({percent(1 - s.conversion_from_previous)})"
            if s.index > 1 and s.conversion_from_previous is not None
            else ""
        )
        parts.append(
            f'<text x="{left}" y="{y + 12}" class="lbl">{escape(f"{s.index}. {s.name}")}</text>'
            f'<rect x="{left}" y="{y + 18}" width="{usable}" height="{bar_h}" rx="4" '
            f'fill="#eef0f4"/>'
            f'<rect x="{left}" y="{y + 18}" width="{w:.1f}" height="{bar_h}" rx="4" '
            f'fill="#2456c7"><title>{escape(s.name)}: {_n(s.users)}</title></rect>'
            f'<text x="{left + 8}" y="{y + 36}" class="on-bar">'
            f"{escape(f'{_n(s.users)} · {percent(s.conversion)}{dropped}')}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


_SANKEY_COLORS = ("#2456c7", "#7c3aed", "#db2777", "#ea580c", "#16a34a", "#0891b2", "#a16207")


def sankey_svg(result: PathsResult, width: int = 1000, height: int = 420) -> Markup:
    """The paths as a Sankey: one column per step, nodes as tall as their customers, links as
    wide as the customers going from one to the other."""
    if not result.links:
        return Markup('<p class="muted">No paths in this selection.</p>')
    inflow: dict[str, int] = {}
    outflow: dict[str, int] = {}
    for link in result.links:
        outflow[link.source] = outflow.get(link.source, 0) + link.value
        inflow[link.target] = inflow.get(link.target, 0) + link.value
    size = {n.id: max(inflow.get(n.id, 0), outflow.get(n.id, 0)) for n in result.nodes}
    steps = sorted({n.step for n in result.nodes})
    columns = {step: [n for n in result.nodes if n.step == step] for step in steps}
    for nodes in columns.values():
        nodes.sort(key=lambda n: (-size[n.id], n.name))
    gap, node_w, margin = 10, 12, 6
    label_room = 150
    tallest = max(
        sum(size[n.id] for n in nodes) + gap * (len(nodes) - 1) for nodes in columns.values()
    )
    usable_h = height - 2 * margin
    scale = (usable_h - gap * max(len(c) for c in columns.values())) / max(
        1, max(sum(size[n.id] for n in c) for c in columns.values())
    )
    if tallest <= 0:
        scale = 0
    step_x = (width - label_room - node_w - 2 * margin) / max(1, len(steps) - 1)
    pos: dict[str, tuple[float, float, float]] = {}  # id → x, y, h
    for ci, step in enumerate(steps):
        y = float(margin)
        for n in columns[step]:
            h = max(2.0, size[n.id] * scale)
            pos[n.id] = (margin + ci * step_x, y, h)
            y += h + gap
    out_used: dict[str, float] = {}
    in_used: dict[str, float] = {}
    names = {n.id: n.name for n in result.nodes}
    color_of: dict[str, str] = {}
    for n in sorted(result.nodes, key=lambda n: n.name):
        color_of.setdefault(n.name, _SANKEY_COLORS[len(color_of) % len(_SANKEY_COLORS)])
    parts = [
        f'<svg class="sankey" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Paths customers take, step by step">'
    ]
    for link in sorted(result.links, key=lambda k: -k.value):
        sx, sy, _ = pos[link.source]
        tx, ty, _ = pos[link.target]
        w = max(1.0, link.value * scale)
        y0 = sy + out_used.get(link.source, 0.0) + w / 2
        y1 = ty + in_used.get(link.target, 0.0) + w / 2
        out_used[link.source] = out_used.get(link.source, 0.0) + w
        in_used[link.target] = in_used.get(link.target, 0.0) + w
        x0, x1 = sx + node_w, tx
        mid = (x0 + x1) / 2
        title = f"{names[link.source]} → {names[link.target]}: {_n(link.value)}"
        parts.append(
            f'<path d="M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"'
            f' fill="none" stroke="{color_of[names[link.source]]}" stroke-opacity="0.28" '
            f'stroke-width="{w:.1f}"><title>{escape(title)}</title></path>'
        )
    for n in result.nodes:
        x, y, h = pos[n.id]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w}" height="{h:.1f}" '
            f'fill="{color_of[n.name]}"><title>{escape(n.name)}: {_n(size[n.id])}</title></rect>'
        )
        if h >= 11:
            parts.append(
                f'<text x="{x + node_w + 4:.1f}" y="{y + min(h / 2, 14) + 4:.1f}" class="halo">'
                f"{escape(n.name[:28])} {_n(size[n.id])}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def heat(rate: float | None) -> str:
    """A cell's inline style: darker blue for a higher rate, white text where it is dark."""
    if rate is None:
        return ""
    light = 97 - 55 * min(1.0, max(0.0, rate))
    ink = "#fff" if light < 60 else "#1d2330"
    return f"background:hsl(220,70%,{light:.0f}%);color:{ink}"


# ---------------------------------------------------------------------------------------------
# Forms: what each page shows when a field is left empty, and the query a filled form asks for.
# The defaults are also what :mod:`wayline.web.prewarm` computes ahead of the first visit.

FUNNEL_FORM = {
    "steps": DEFAULT_FUNNEL,
    "window": "14d",
    "order": "ordered",
    "breakdown": "",
    "since": "",
    "until": "",
    "by": "customer",
}
PATHS_FORM = {
    "from": "",
    "to": "",
    "steps": "5",
    "by": "customer",
    "exclude": "",
    "since": "",
    "until": "",
}
RETENTION_FORM = {
    "period": "month",
    "cohort": "first_purchase",
    "periods": "12",
    "since": "",
    "until": "",
}


def _filled(defaults: dict[str, str], given: dict[str, str | None]) -> dict[str, str]:
    return {name: given.get(name) or default for name, default in defaults.items()}


def funnel_form_query(workspace_id: str, form: dict[str, str]) -> FunnelQuery:
    return funnel_query(
        workspace_id,
        steps=form["steps"],
        window=form["window"],
        order=form["order"],
        breakdown=form["breakdown"],
        since=form["since"],
        until=form["until"],
        by=form["by"],
    )


def paths_form_query(workspace_id: str, form: dict[str, str]) -> PathsQuery:
    try:
        n_steps = int(form["steps"])
    except ValueError:
        raise InputError("steps is a whole number (2 to 10)", field="steps") from None
    if not 2 <= n_steps <= 10:
        raise InputError("steps is a whole number (2 to 10)", field="steps")
    return paths_query(
        workspace_id,
        start=form["from"],
        end=form["to"],
        steps=n_steps,
        by=form["by"],
        exclude=[x.strip() for x in form["exclude"].split(",") if x.strip()],
        since=form["since"],
        until=form["until"],
    )


def retention_form_query(workspace_id: str, form: dict[str, str]) -> RetentionQuery:
    if form["period"] not in ("day", "week", "month"):
        raise InputError("period is day, week or month", field="period")
    if form["cohort"] not in ("first_purchase", "first_seen"):
        raise InputError("cohort is first_purchase or first_seen", field="cohort")
    try:
        n_periods = int(form["periods"])
    except ValueError:
        raise InputError("periods is a whole number", field="periods") from None
    return retention_query(
        workspace_id,
        period=form["period"],
        cohort=form["cohort"],
        periods=n_periods,
        since=form["since"],
        until=form["until"],
    )


# ---------------------------------------------------------------------------------------------
# Pages


@router.get("/funnels")
def funnels_page(
    request: Request,
    session: Session,
    steps: Opt = None,
    window: Opt = None,
    order: Opt = None,
    breakdown: Opt = None,
    since: Opt = None,
    until: Opt = None,
    by: Opt = None,
) -> Response:
    given = {
        "steps": steps,
        "window": window,
        "order": order,
        "breakdown": breakdown,
        "since": since,
        "until": until,
        "by": by,
    }
    form = _filled(FUNNEL_FORM, given)
    query, error = _run(lambda: funnel_form_query(session.workspace_id, form))
    context: dict[str, Any] = {"form": form, "error": error, "result": None}
    if query is not None:
        cached = run_funnel_cached(request.app.state, query)
        result = cached.value
        context.update(
            result=result,
            chart=funnel_bars_svg(result.steps),
            unit="sessions" if query.by == "session" else "customers",
            **_when(cached),
        )
    return page(
        request,
        "funnels.html",
        session,
        title="Funnels",
        pct=percent,
        n=_n,
        secs=duration,
        status_code=400 if error else 200,
        **context,
    )


@router.get("/paths")
def paths_page(
    request: Request,
    session: Session,
    start: Annotated[str | None, Query(alias="from", max_length=200)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=200)] = None,
    steps: Opt = None,
    by: Opt = None,
    exclude: Opt = None,
    since: Opt = None,
    until: Opt = None,
) -> Response:
    given = {
        "from": start,
        "to": end,
        "steps": steps,
        "by": by,
        "exclude": exclude,
        "since": since,
        "until": until,
    }
    form = _filled(PATHS_FORM, given)
    query, error = _run(lambda: paths_form_query(session.workspace_id, form))
    context: dict[str, Any] = {"form": form, "error": error, "result": None}
    if query is not None:
        cached = run_paths_cached(request.app.state, query)
        context.update(result=cached.value, chart=sankey_svg(cached.value), **_when(cached))
    return page(
        request,
        "paths.html",
        session,
        title="Paths",
        pct=percent,
        n=_n,
        status_code=400 if error else 200,
        **context,
    )


@router.get("/retention")
def retention_page(
    request: Request,
    session: Session,
    period: Opt = None,
    cohort: Opt = None,
    periods: Opt = None,
    since: Opt = None,
    until: Opt = None,
) -> Response:
    given = {"period": period, "cohort": cohort, "periods": periods, "since": since, "until": until}
    form = _filled(RETENTION_FORM, given)
    query, error = _run(lambda: retention_form_query(session.workspace_id, form))
    context: dict[str, Any] = {"form": form, "error": error, "result": None}
    if query is not None:
        cached = run_retention_cached(request.app.state, query)
        result: RetentionResult = cached.value
        width = max((len(c.retained) for c in result.cohorts), default=0)
        context.update(
            result=result,
            width=width,
            averages=result.average_rates(),
            date_format="%Y-%m" if query.period == "month" else "%Y-%m-%d",
            **_when(cached),
        )
    return page(
        request,
        "retention.html",
        session,
        title="Retention",
        pct=percent,
        n=_n,
        heat=heat,
        status_code=400 if error else 200,
        **context,
    )
