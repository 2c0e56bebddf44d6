"""Small inline SVG charts for the HTML map: the funnel, the Sankey of stage flows, and the
emotion curve. Drawn by our own code so the page needs no script and no network: it opens from a
file, prints, and renders the same in a headless browser.

Pure functions from figures to SVG text; every label is XML-escaped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from wayline.journeymap.model import Flow, FunnelStepView, StageView
from wayline.journeymap.render.format import value

PALETTE = ("#2563eb", "#7c3aed", "#db2777", "#ea580c", "#16a34a", "#0891b2")
DROP_COLOR = "#cbd5e1"


def funnel_svg(steps: Sequence[FunnelStepView], width: int = 760) -> str:
    """Horizontal bars, one per step, proportional to customers; labels with conversion."""
    if not steps:
        return ""
    bar_h, gap, label_w = 26, 10, 170
    top = max(int(s.persons.value or 0) for s in steps) or 1
    height = len(steps) * (bar_h + gap) + gap
    parts = [
        f'<svg class="funnel" role="img" aria-label="Funnel" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" style="max-width:100%;height:auto" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, s in enumerate(steps):
        y = gap + i * (bar_h + gap)
        n = int(s.persons.value or 0)
        w = max(2.0, (width - label_w - 150) * n / top)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h * 0.68:.1f}" text-anchor="end" '
            f'class="lbl">{escape(s.name)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + bar_h * 0.68:.1f}" class="num">'
            f"{escape(value(s.persons))} · {escape(value(s.conversion))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class _Node:
    name: str
    column: int
    value: int
    y: float = 0.0
    h: float = 0.0


def _columns(flows: Sequence[Flow]) -> dict[str, int]:
    """Each node's column: sources before targets (longest path from a node with no input)."""
    col: dict[str, int] = {}
    targets = {f.target for f in flows}
    for f in flows:
        if f.source not in targets:
            col.setdefault(f.source, 0)
    for _ in range(len(flows) + 1):
        changed = False
        for f in flows:
            if f.source in col and col.get(f.target, -1) < col[f.source] + 1:
                col[f.target] = col[f.source] + 1
                changed = True
        if not changed:
            break
    for f in flows:  # cycles cannot happen in a map's flows; be safe anyway
        col.setdefault(f.source, 0)
        col.setdefault(f.target, col[f.source] + 1)
    return col


def sankey_svg(flows: Sequence[Flow], width: int = 960, height: int = 360) -> str:
    """A Sankey of customers flowing between stages and out of the journey."""
    if not flows:
        return ""
    col = _columns(flows)
    inflow: dict[str, int] = defaultdict(int)
    outflow: dict[str, int] = defaultdict(int)
    for f in flows:
        inflow[f.target] += f.persons
        outflow[f.source] += f.persons
    names = sorted(col, key=lambda n: (col[n], n.startswith("Left"), n))
    ncols = max(col.values()) + 1
    node_w, pad, label_room = 12, 14, 120
    by_col: dict[int, list[str]] = defaultdict(list)
    for n in names:
        by_col[col[n]].append(n)
    values = {n: max(inflow[n], outflow[n]) for n in names}
    usable = height - 30
    scale = min(
        (usable - pad * (len(ns) - 1)) / max(1, sum(values[n] for n in ns))
        for ns in by_col.values()
    )
    x_step = (width - label_room - node_w) / max(1, ncols - 1)
    pos: dict[str, tuple[float, float, float]] = {}
    for c, ns in by_col.items():
        y = 10.0
        for n in ns:
            h = max(2.0, values[n] * scale)
            pos[n] = (c * x_step, y, h)
            y += h + pad
    parts = [
        f'<svg class="sankey" role="img" aria-label="Paths through the stages" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'style="max-width:100%;height:auto" xmlns="http://www.w3.org/2000/svg">'
    ]
    out_off: dict[str, float] = defaultdict(float)
    in_off: dict[str, float] = defaultdict(float)
    for f in sorted(flows, key=lambda f: (col[f.source], pos[f.target][1])):
        sx, sy, _ = pos[f.source]
        tx, ty, _ = pos[f.target]
        w = max(1.0, f.persons * scale)
        y0 = sy + out_off[f.source] + w / 2
        y1 = ty + in_off[f.target] + w / 2
        out_off[f.source] += w
        in_off[f.target] += w
        x0, x1 = sx + node_w, tx
        mid = (x0 + x1) / 2
        color = DROP_COLOR if f.target.startswith("Left") else PALETTE[col[f.source] % 6]
        parts.append(
            f'<path d="M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} '
            f'{mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}" '
            f'stroke="{color}" stroke-opacity="0.45" stroke-width="{w:.1f}" fill="none">'
            f"<title>{escape(f.source)} → {escape(f.target)}: {f.persons:,}</title></path>"
        )
    for n in names:
        x, y, h = pos[n]
        color = DROP_COLOR if n.startswith("Left") else PALETTE[col[n] % 6]
        tx = x + node_w + 4
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w}" height="{h:.1f}" fill="{color}"/>'
            f'<text x="{tx:.1f}" y="{y + min(h, 24) / 2 + 4:.1f}" class="lbl halo">{escape(n)} '
            f'<tspan class="num">{values[n]:,}</tspan></text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def emotion_svg(stages: Sequence[StageView], width: int = 960, height: int = 90) -> str:
    """The emotion curve: survey scores per stage (-1 … +1), or a dashed neutral line with a
    note when there are no scores yet."""
    if not stages:
        return ""
    n = len(stages)
    step = width / n
    mid = height / 2
    parts = [
        f'<svg class="emotion" role="img" aria-label="Emotion curve" viewBox="0 0 {width} '
        f'{height}" width="100%" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="0" y1="{mid}" x2="{width}" y2="{mid}" stroke="#94a3b8" '
        'stroke-dasharray="4 4"/>',
    ]
    points = [
        (step * i + step / 2, mid - (s.emotion.score or 0.0) * (mid - 14))
        for i, s in enumerate(stages)
        if s.emotion.score is not None
    ]
    if len(points) >= 2:
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{d}" fill="none" stroke="#7c3aed" stroke-width="3"/>')
    for x, y in points:
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#7c3aed"/>')
    if not points:
        parts.append(
            f'<text x="{width / 2}" y="{mid - 10}" text-anchor="middle" class="muted">'
            "No survey scores yet</text>"
        )
    parts.append(
        f'<text x="4" y="14" class="num">positive</text><text x="4" y="{height - 4}" '
        'class="num">negative</text></svg>'
    )
    return "".join(parts)
