"""The map as Markdown: the table store owners already draw by hand — Stage | Customer action |
Touchpoints | Pain point | Solution | KPI — filled from data, followed by the evidence behind
every pain point, the funnel, where customers drop off, the owner's notes, and the event names
the mapping does not know yet."""

from __future__ import annotations

from wayline.journeymap.model import JourneyMap, JourneyView, PainPointView, StageView
from wayline.journeymap.render.format import (
    change,
    evidence_figures,
    label,
    money,
    value,
    with_change,
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _period(m: JourneyMap) -> str:
    text = f"{m.since:%Y-%m-%d} → {m.until:%Y-%m-%d %H:%M} UTC"
    if m.previous_since is not None and m.previous_until is not None:
        text += f" (compared with {m.previous_since:%Y-%m-%d} → {m.previous_until:%Y-%m-%d})"
    return text


def _stage_points(view: JourneyView, stage: str) -> list[PainPointView]:
    return [p for p in view.pain_points if p.stage == stage]


def _row(view: JourneyView, s: StageView, currency: str | None) -> str:
    actions = "<br>".join(f"{label(a.name)} ({value(a.persons)})" for a in s.actions[:3]) or "–"
    tps = ", ".join(label(t.name) for t in s.touchpoints[:3])
    if s.stage == "awareness" and s.channels:
        tps = ", ".join(label(c.name) for c in s.channels[:3]) + (f"; {tps}" if tps else "")
    points = _stage_points(view, s.stage)
    pain = "<br>".join(f"{p.title} ({p.severity})" for p in points[:2])
    if not pain and s.drop_offs and s.dropped is not None:
        pain = f"{value(s.dropped)} leave here, most after {label(s.drop_offs[0].name)}"
    solutions = "<br>".join(sol.title for p in points[:2] for sol in p.solutions[:1]) or "–"
    kpis = [f"Entered {with_change(s.entered)}"]
    if s.move_on_rate is not None:
        kpis.append(f"Move on {with_change(s.move_on_rate)}")
    kpis += [f"{k.label} {with_change(k.metric, currency)}" for k in s.kpis[:3]]
    return (
        f"| {_cell(s.label)} | {_cell(actions)} | {_cell(tps or '–')} | {_cell(pain or '–')} "
        f"| {_cell(solutions)} | {_cell('<br>'.join(kpis))} |"
    )


def evidence_line(p: PainPointView, currency: str | None) -> str:
    e = p.evidence
    figures = evidence_figures(e.metric, e.unit, e.value, e.baseline)
    segment = ", ".join(f"{k}={v}" for k, v in e.segment.items()) or "all customers"
    return (
        f"- **{p.title}** ({p.stage}, {p.severity}): {e.metric}: {figures}; "
        f"{e.affected_customers:,} customers affected; {money(e.revenue_at_stake, currency)} "
        f"at stake; {e.since:%Y-%m-%d} → {e.until:%Y-%m-%d}; segment {segment}. {e.detail}"
    )


def _view(m: JourneyMap, view: JourneyView, heading: bool) -> list[str]:
    cur = m.currency
    out: list[str] = []
    if heading:
        out += [f"## {view.label}", ""]
    out.append(
        f"Customers {with_change(view.persons)} · orders {with_change(view.orders)} · "
        f"revenue {with_change(view.revenue, cur)}"
    )
    out += [
        "",
        "| Stage | Customer action | Touchpoints | Pain point | Solution | KPI |",
        "|---|---|---|---|---|---|",
    ]
    out += [_row(view, s, cur) for s in view.stages]
    out.append("")
    if view.pain_points:
        out += ["### Pain points and their evidence", ""]
        for p in view.pain_points:
            out.append(evidence_line(p, cur))
            for sol in p.solutions:
                template = f" — journey template `{sol.template}`" if sol.template else ""
                out.append(f"  - Solution: {sol.title}{template}. {sol.description}")
        out.append("")
    if view.funnel:
        out += [
            "### Funnel",
            "",
            "| Step | Customers | Conversion | Dropped |",
            "|---|---|---|---|",
        ]
        for f in view.funnel:
            out.append(
                f"| {f.name} | {with_change(f.persons)} | {with_change(f.conversion)} "
                f"| {with_change(f.dropped)} |"
            )
        out.append("")
    drops = [s for s in view.stages if s.drop_offs]
    if drops:
        out += ["### Where customers drop off", ""]
        for s in drops:
            where = ", ".join(f"{label(d.name)} ({value(d.persons)})" for d in s.drop_offs)
            out.append(
                f"- {s.label}: {with_change(s.dropped)} of {value(s.entered)} did not move on "
                f"({s.next_goal}); their last action here: {where}. Time to move on: "
                f"{value(s.median_time_to_next_seconds)} "
                f"{change(s.median_time_to_next_seconds)}".rstrip()
            )
        out.append("")
    notes = [s for s in view.stages if not s.notes.is_empty]
    if notes:
        out += ["### Your notes", ""]
        for s in notes:
            n = s.notes
            bits = [f"goal: {n.goal}"] if n.goal else []
            bits += [f"thinks “{t}”" for t in n.thoughts]
            bits += [f"feels {f}" for f in n.feelings]
            bits += [f"note: {t}" for t in n.notes]
            bits += [f"idea: {t}" for t in n.ideas]
            out.append(f"- {s.label}: " + "; ".join(bits))
        out.append("")
    return out


def render_markdown(m: JourneyMap) -> str:
    out = [f"# Customer journey map — {m.workspace_id}", "", f"Period: {_period(m)}", ""]
    many = len(m.views) > 1
    for view in m.views:
        out += _view(m, view, heading=many or bool(view.segment))
    if m.pain_points_note:
        out += [f"_{m.pain_points_note}_", ""]
    out += [f"_Emotions: {m.emotion_note}_", ""]
    if m.unknown_events:
        out += [
            "### Events the mapping does not know",
            "",
            "Drawn at the suggested stage; add them to journeymap.yaml to place them for good.",
            "",
            "| Event | Events | Suggested stage | Suggested touchpoint |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {_cell(u.name)} | {u.events:,} | {u.suggested_stage} | {u.suggested_touchpoint} |"
            for u in m.unknown_events
        ]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
