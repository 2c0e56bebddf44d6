"""The map as one self-contained HTML page: stage lanes, a funnel, a Sankey of paths, the
emotion curve, and the pain points with their evidence — something a store owner prints or
shares. CSS is inline and the charts are inline SVG (:mod:`.svg`): no script, no font, no
request to any network, so the file opens anywhere and renders the same in headless Chromium
for PNG / PDF (:mod:`.browser`).

Jinja2 autoescapes every value; the SVG fragments are built from escaped text and marked safe.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from wayline.journeymap.model import (
    EvidenceView,
    FunnelStepView,
    JourneyMap,
    JourneyView,
    Metric,
    Share,
    StageView,
)
from wayline.journeymap.render import format as fmt
from wayline.journeymap.render.svg import emotion_svg, funnel_svg, sankey_svg

STAGE_COLORS = (
    ("awareness", "#2563eb"),
    ("consideration", "#7c3aed"),
    ("decision", "#db2777"),
    ("retention", "#ea580c"),
    ("advocacy", "#16a34a"),
)
_DEVICE_COLORS = {"mobile": "#2563eb", "desktop": "#7c3aed", "tablet": "#0891b2"}


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("wayline.journeymap.render", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _total_at_stake(view: JourneyView) -> Decimal:
    return sum((p.evidence.revenue_at_stake for p in view.pain_points), Decimal("0.00"))


def _share_pct(share: Share, shares: tuple[Share, ...]) -> int:
    total = sum(int(s.persons.value or 0) for s in shares)
    return round(100 * int(share.persons.value or 0) / total) if total else 0


def _ev_value(e: EvidenceView, v: float) -> str:
    return fmt.evidence_number(e.metric, e.unit, v, e.baseline)


def render_html(m: JourneyMap) -> str:
    currency = m.currency

    def chg(metric: Metric | None, higher_is_better: bool = True) -> Markup:
        text = fmt.change(metric, currency)
        if not text:
            return Markup("")
        cls = fmt.direction(metric, higher_is_better)
        return Markup('<span class="chg {}">{}</span>').format(cls, text)

    def pct(metric: Metric | None) -> int:
        if metric is None or metric.value is None:
            return 0
        return round(min(1.0, max(0.0, float(metric.value))) * 100)

    def funnel(steps: tuple[FunnelStepView, ...]) -> Markup:
        return Markup(funnel_svg(steps))

    def sankey(flows: tuple[object, ...]) -> Markup:
        return Markup(sankey_svg(flows))  # type: ignore[arg-type]

    def emotion(stages: tuple[StageView, ...]) -> Markup:
        return Markup(emotion_svg(stages))

    template = _env().get_template("journey_map.html.j2")
    return template.render(
        m=m,
        fmt=lambda metric: fmt.value(metric, currency),
        chg=chg,
        pct=pct,
        label=fmt.label,
        money=lambda v: fmt.money(v, currency),
        funnel=funnel,
        sankey=sankey,
        emotion=emotion,
        share_pct=_share_pct,
        device_color=lambda name: _DEVICE_COLORS.get(name, "#94a3b8"),
        total_at_stake=_total_at_stake,
        ev_value=_ev_value,
        lower_is_better=fmt.LOWER_IS_BETTER,
        stage_colors=STAGE_COLORS,
        escape=escape,
    )
