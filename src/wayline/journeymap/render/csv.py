"""The map as CSV: one row per figure, long format, for a spreadsheet or a BI tool.

Columns: ``view, stage, section, name, metric, value, unit, previous, change``. ``section`` is
``stage`` (entered, moved on, dropped, time), ``kpi``, ``action``, ``touchpoint``, ``channel``,
``device``, ``drop_off``, ``funnel`` or ``pain_point`` (value: revenue at stake)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from wayline.journeymap.model import JourneyMap, Metric, Share

COLUMNS = ("view", "stage", "section", "name", "metric", "value", "unit", "previous", "change")


def _m(view: str, stage: str, section: str, name: str, metric: str, m: Metric | None) -> list[str]:
    if m is None:
        return [view, stage, section, name, metric, "", "", "", ""]
    ch = m.change
    return [
        view,
        stage,
        section,
        name,
        metric,
        "" if m.value is None else str(m.value),
        m.unit,
        "" if m.previous is None else str(m.previous),
        "" if ch is None else str(ch),
    ]


def rows(m: JourneyMap) -> Iterator[list[str]]:
    for v in m.views:
        for s in v.stages:
            yield _m(v.label, s.stage, "stage", "", "entered", s.entered)
            yield _m(v.label, s.stage, "stage", "", "moved_on", s.moved_on)
            yield _m(v.label, s.stage, "stage", "", "dropped", s.dropped)
            yield _m(v.label, s.stage, "stage", "", "move_on_rate", s.move_on_rate)
            yield _m(v.label, s.stage, "stage", "", "sessions", s.sessions)
            yield _m(v.label, s.stage, "stage", "", "events", s.events)
            yield _m(
                v.label,
                s.stage,
                "stage",
                "",
                "median_time_in_stage_seconds",
                s.median_time_in_stage_seconds,
            )
            yield _m(
                v.label,
                s.stage,
                "stage",
                "",
                "median_time_to_next_seconds",
                s.median_time_to_next_seconds,
            )
            for k in s.kpis:
                yield _m(v.label, s.stage, "kpi", k.label, k.key, k.metric)
            sections: tuple[tuple[str, tuple[Share, ...]], ...] = (
                ("action", s.actions),
                ("touchpoint", s.touchpoints),
                ("channel", s.channels),
                ("device", s.devices),
                ("drop_off", s.drop_offs),
            )
            for section, shares in sections:
                for sh in shares:
                    yield _m(v.label, s.stage, section, sh.name, "persons", sh.persons)
                    yield _m(v.label, s.stage, section, sh.name, "events", sh.events)
        for f in v.funnel:
            yield _m(v.label, "", "funnel", f.name, "persons", f.persons)
            yield _m(v.label, "", "funnel", f.name, "conversion", f.conversion)
        for p in v.pain_points:
            yield _m(
                v.label,
                p.stage,
                "pain_point",
                p.title,
                "revenue_at_stake",
                Metric(p.evidence.revenue_at_stake, "money"),
            )


def render_csv(m: JourneyMap) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows(m))
    return buf.getvalue()
