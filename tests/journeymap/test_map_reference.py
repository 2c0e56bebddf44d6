"""The map's stage and funnel figures against a brute-force reference, on random logs."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from map_logs import T0, ev

from wayline.analytics.backend import DuckDBBackend
from wayline.journeymap.build import MapQuery, build_map
from wayline.journeymap.compare import attach_previous
from wayline.journeymap.model import JourneyMap, Metric
from wayline.journeymap.stages import FUNNEL_ROLES, STAGES, default_mapping
from wayline.storage.eventstore import EventStore

MAPPING = default_mapping()
NAMES = (
    "$page",
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Payment Info Entered",
    "Order Completed",
    "Order Delivered",
    "Product Reviewed",
    "$identify",
    "Email Opened",
)
PAGES = ("/", "/products/a", "/cart", "/checkout", "/pages/faq")
PERIOD = (T0, T0 + timedelta(days=1))

event = st.tuples(
    st.sampled_from(["a", "b", "c", "d"]),
    st.sampled_from(NAMES),
    st.integers(min_value=-60, max_value=24 * 60 + 60),  # some outside the period
    st.sampled_from(PAGES),
)


def reference(log: list[tuple[str, str, int, str]]) -> dict[str, Any]:
    """The definitions of ``wayline.journeymap.build``, one customer at a time."""
    per: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    names = set()
    for person, name, minute, page in log:
        if 0 <= minute < 24 * 60:
            names.add(name)
            if MAPPING.role(name) != "identify":
                per[person].append((minute, name, page))
    roles = {MAPPING.role(n) for n in names}
    funnel_roles = [r for r in FUNNEL_ROLES if r in roles]
    stages: dict[int, list[int]] = {i: [0, 0] for i in range(len(STAGES))}
    funnel = [0] * len(funnel_roles)
    for events in per.values():
        first: dict[int, int] = {}
        by_role: dict[str, list[int]] = defaultdict(list)
        for minute, name, page in events:
            c = MAPPING.classify(name, page if name == "$page" else None)
            i = STAGES.index(c.stage)
            first[i] = min(first.get(i, minute), minute)
            if c.role:
                by_role[c.role].append(minute)
        orders = len(by_role["purchase"])
        entered = {
            0: any(i in first for i in (0, 1, 2)),
            1: 1 in first,
            2: 2 in first,
            3: 3 in first or orders > 0,
            4: 4 in first,
        }
        moved = {
            0: 1 in first or 2 in first,
            1: 2 in first,
            2: orders > 0,
            3: orders >= 2,
            4: False,
        }
        for i in stages:
            stages[i][0] += entered[i]
            stages[i][1] += entered[i] and moved[i]
        t: int | None = None
        for k, role in enumerate(funnel_roles):
            times = by_role.get(role)
            if not times:
                break
            if k == 0:
                t = min(times)
            elif t is None or max(times) < t:
                break
            else:
                t = max(t, min(times))
            funnel[k] += 1
    return {"stages": stages, "funnel": funnel, "persons": len(per)}


def shaped(m: JourneyMap) -> dict[str, Any]:
    view = m.views[0]
    stages = {i: [0, 0] for i in range(len(STAGES))}
    for s in view.stages:
        i = STAGES.index(s.stage)  # type: ignore[arg-type]
        stages[i] = [s.entered.value, s.moved_on.value if s.moved_on else 0]
    return {
        "stages": stages,
        "funnel": [f.persons.value for f in view.funnel],
        "persons": view.persons.value,
    }


@settings(max_examples=30, deadline=None)
@given(st.lists(event, min_size=1, max_size=30))
def test_stages_and_funnel_match_the_reference(log: list[tuple[str, str, int, str]]) -> None:
    rows = [
        ev(
            p,
            n,
            minute,
            page=page if n == "$page" else None,
            revenue="9.90" if n == "Order Completed" else None,
        )
        for p, n, minute, page in log
    ]
    with EventStore(":memory:") as store:
        store.append_rows(rows)
        backend = DuckDBBackend(store.con)
        want = reference(log)
        if not want["persons"]:
            return
        m = build_map(backend, MapQuery(since=PERIOD[0], until=PERIOD[1]), MAPPING, now=PERIOD[1])
    got = shaped(m)
    # Stages the store has no events of (advocacy without reviews) are not drawn.
    drawn = {STAGES.index(s.stage) for s in m.views[0].stages}  # type: ignore[arg-type]
    assert got["stages"] == {i: v if i in drawn else [0, 0] for i, v in want["stages"].items()}
    assert got["funnel"] == want["funnel"]
    assert got["persons"] == want["persons"]
    # Comparing a map with itself changes nothing.
    same = attach_previous(m, m)
    for s in same.views[0].stages:
        for metric in (s.entered, s.moved_on, s.dropped, *(k.metric for k in s.kpis)):
            if isinstance(metric, Metric) and metric.value is not None:
                assert metric.change == 0
