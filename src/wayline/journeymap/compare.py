"""Comparing two periods: every figure of a map gets its value in the previous period.

``--compare previous`` builds the map twice — for ``[since, until)`` and for the period of the
same length just before it — and :func:`attach_previous` (pure) copies each figure of the
previous map into the matching :class:`~wayline.journeymap.model.Metric` of the current one as
``previous``. Figures are matched by what they are, never by position: views by label, stages by
name, actions / touchpoints / channels / devices / drop-off points by name, KPIs by key, funnel
steps by role. A figure with no counterpart (an action new this period) keeps ``previous =
None``, and renderers show it as new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from wayline.journeymap.model import (
    FunnelStepView,
    JourneyMap,
    JourneyView,
    Kpi,
    Metric,
    Share,
    StageView,
)


def with_previous(current: Metric | None, previous: Metric | None) -> Metric | None:
    """``current`` with ``previous``'s value attached (None stays None)."""
    if current is None:
        return None
    if previous is None:
        return current
    return replace(current, previous=previous.value)


def _m(current: Metric, previous: Metric | None) -> Metric:
    return replace(current, previous=previous.value) if previous is not None else current


def _shares(current: Sequence[Share], previous: Sequence[Share]) -> tuple[Share, ...]:
    by_name = {s.name: s for s in previous}
    out = []
    for s in current:
        p = by_name.get(s.name)
        out.append(
            replace(
                s,
                persons=_m(s.persons, p.persons if p else None),
                events=_m(s.events, p.events if p else None),
            )
        )
    return tuple(out)


def _kpis(current: Sequence[Kpi], previous: Sequence[Kpi]) -> tuple[Kpi, ...]:
    by_key = {k.key: k for k in previous}
    return tuple(
        replace(k, metric=_m(k.metric, by_key[k.key].metric if k.key in by_key else None))
        for k in current
    )


def _stage(c: StageView, p: StageView | None) -> StageView:
    if p is None:
        return c
    return replace(
        c,
        entered=_m(c.entered, p.entered),
        moved_on=with_previous(c.moved_on, p.moved_on),
        dropped=with_previous(c.dropped, p.dropped),
        move_on_rate=with_previous(c.move_on_rate, p.move_on_rate),
        sessions=_m(c.sessions, p.sessions),
        events=_m(c.events, p.events),
        actions=_shares(c.actions, p.actions),
        touchpoints=_shares(c.touchpoints, p.touchpoints),
        channels=_shares(c.channels, p.channels),
        devices=_shares(c.devices, p.devices),
        drop_offs=_shares(c.drop_offs, p.drop_offs),
        median_time_in_stage_seconds=_m(
            c.median_time_in_stage_seconds, p.median_time_in_stage_seconds
        ),
        median_time_to_next_seconds=with_previous(
            c.median_time_to_next_seconds, p.median_time_to_next_seconds
        ),
        kpis=_kpis(c.kpis, p.kpis),
    )


def _funnel(
    current: Sequence[FunnelStepView], previous: Sequence[FunnelStepView]
) -> tuple[FunnelStepView, ...]:
    by_role = {f.role: f for f in previous}
    out = []
    for f in current:
        p = by_role.get(f.role)
        if p is None:
            out.append(f)
            continue
        out.append(
            replace(
                f,
                persons=_m(f.persons, p.persons),
                conversion=_m(f.conversion, p.conversion),
                dropped=_m(f.dropped, p.dropped),
            )
        )
    return tuple(out)


def _view(c: JourneyView, p: JourneyView | None) -> JourneyView:
    if p is None:
        return c
    stages = {s.stage: s for s in p.stages}
    return replace(
        c,
        persons=_m(c.persons, p.persons),
        orders=_m(c.orders, p.orders),
        revenue=_m(c.revenue, p.revenue),
        stages=tuple(_stage(s, stages.get(s.stage)) for s in c.stages),
        funnel=_funnel(c.funnel, p.funnel),
    )


def attach_previous(current: JourneyMap, previous: JourneyMap) -> JourneyMap:
    """``current`` with every figure's previous-period value from ``previous``."""
    views = {v.label: v for v in previous.views}
    return replace(
        current,
        views=tuple(_view(v, views.get(v.label)) for v in current.views),
        previous_since=previous.since,
        previous_until=previous.until,
    )
