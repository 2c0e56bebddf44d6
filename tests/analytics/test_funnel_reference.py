"""The funnel SQL against the brute-force reference, on random logs (Hypothesis).

The logs are built to hit the hard cases: few distinct timestamps (ties), few event names
(repeated steps, steps sharing an event), anonymous ids merged into a customer, sessions with and
without ``session_id``, properties of mixed types, ``$identify`` traits.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import funnel_reference as ref
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wayline.analytics.backend import DuckDBBackend
from wayline.analytics.filters import PropertyFilter
from wayline.analytics.funnels import (
    FunnelExclusion,
    FunnelQuery,
    FunnelResult,
    FunnelStep,
    dropped_persons,
    run_funnel,
)
from wayline.storage.eventstore import EventStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count()


def row(
    person: str,
    event: str,
    ts: datetime,
    *,
    anonymous_id: str | None = None,
    properties: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    channel: str | None = None,
    session_id: str | None = None,
    workspace_id: str = "default",
) -> dict[str, Any]:
    return {
        "workspace_id": workspace_id,
        "message_id": f"m{next(_ids):09d}",
        "type": "identify" if event == "$identify" else "track",
        "event": event,
        "user_id": None if anonymous_id else person,
        "anonymous_id": anonymous_id,
        "person_id": person,
        "timestamp": ts,
        "received_at": ts,
        "session_id": session_id,
        "channel": channel,
        "properties": json.dumps(properties) if properties is not None else None,
        "traits": json.dumps(traits) if traits is not None else None,
        "source": "test",
    }


def backend(rows: Sequence[dict[str, Any]]) -> DuckDBBackend:
    store = EventStore(":memory:")
    if rows:
        store.append_rows(rows)
    return DuckDBBackend(store.con)


def steps_tuple(result: FunnelResult) -> list[ref.StepRef]:
    return [
        (
            s.users,
            s.median_seconds,
            s.p90_seconds,
            s.median_seconds_from_start,
            s.p90_seconds_from_start,
        )
        for s in result.steps
    ]


def approx(steps: list[ref.StepRef]) -> list[Any]:
    return [
        (u, *(None if x is None else pytest.approx(x, abs=1e-5) for x in rest))
        for u, *rest in steps
    ]


def assert_matches_reference(rows: list[dict[str, Any]], query: FunnelQuery) -> FunnelResult:
    be = backend(rows)
    got = run_funnel(be, query)
    total, by_value, reach = ref.funnel(rows, query)
    assert steps_tuple(got) == approx(total)
    if query.breakdown is not None:
        got_groups = {
            b.value: [
                (
                    s.users,
                    s.median_seconds,
                    s.p90_seconds,
                    s.median_seconds_from_start,
                    s.p90_seconds_from_start,
                )
                for s in b.steps
            ]
            for b in got.breakdown
        }
        assert set(got_groups) == set(by_value)
        for value, steps in by_value.items():
            assert got_groups[value] == approx(steps)
    n = len(query.steps)
    for k in range(2, n + 1):
        expect = sorted(
            {u[0] if isinstance(u, tuple) else u for u, r in reach.items() if r == k - 1}
        )
        assert dropped_persons(be, query, k) == expect
    return got


# ---------------------------------------------------------------------------------------------
# Random logs and queries

OFFSETS_MIN = [0, 0, 0, 1, 2, 5, 30, 31, 45, 24 * 60, 3 * 24 * 60, 20 * 24 * 60]
NAMES = ("a", "b", "c", "x", "$identify")
PROPS = st.one_of(
    st.none(),
    st.fixed_dictionaries({"k": st.sampled_from([1, 2, "1", "v", True, 2.5])}),
    st.just({}),
)


@st.composite
def logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    people = [f"u{i}" for i in range(draw(st.integers(1, 3)))]
    rows = []
    for _ in range(draw(st.integers(0, 36))):
        person = draw(st.sampled_from(people))
        # An anonymous id merged into the person: identity resolution left person_id resolved.
        anon = draw(st.sampled_from([None, None, f"anon-{person}-1", f"anon-{person}-2"]))
        event = draw(st.sampled_from(NAMES[:3] * 3 + NAMES))
        ts = T0 + timedelta(
            minutes=draw(st.sampled_from(OFFSETS_MIN)),
            seconds=draw(st.sampled_from([0, 0, 1])),
        )
        rows.append(
            row(
                person,
                event,
                ts,
                anonymous_id=anon,
                properties=draw(PROPS),
                traits={"persona": draw(st.sampled_from(["bargain", "loyal"]))}
                if event == "$identify"
                else None,
                channel=draw(st.sampled_from([None, "ads", "email"])),
                session_id=draw(st.sampled_from([None, None, "s1"])),
                workspace_id=draw(st.sampled_from(["default"] * 9 + ["other"])),
            )
        )
    return rows


STEP_EVENTS = [("a",), ("b",), ("c",), ("a", "b"), ("b", "c"), ("a",)]
FILTERS = [
    (),
    (),
    (),
    (),
    (),
    (PropertyFilter("k", "eq", "1"),),
    (PropertyFilter("k", "gte", 2),),
    (PropertyFilter("channel", "neq", "ads"),),
    (PropertyFilter("k", "is_set"),),
]


@st.composite
def queries(draw: st.DrawFn) -> FunnelQuery:
    n = draw(st.integers(1, 4))
    steps = tuple(
        FunnelStep(draw(st.sampled_from(STEP_EVENTS)), filters=draw(st.sampled_from(FILTERS)))
        for _ in range(n)
    )
    order = draw(st.sampled_from(["ordered", "ordered", "strict", "any"]))
    exclusions: tuple[FunnelExclusion, ...] = ()
    if order != "any" and n >= 2 and draw(st.booleans()):
        a = draw(st.integers(1, n - 1))
        b = draw(st.integers(a + 1, n))
        exclusions = (FunnelExclusion(draw(st.sampled_from([("x",), ("c",)])), (), a, b),)
    since = until = None
    if draw(st.integers(0, 4)) == 0:
        since = T0 + timedelta(minutes=1)
        until = T0 + timedelta(days=10)
    return FunnelQuery(
        steps=steps,
        window=draw(
            st.sampled_from(
                [
                    None,
                    timedelta(minutes=1),
                    timedelta(minutes=30),
                    timedelta(days=1),
                    timedelta(days=14),
                ]
            )
        ),
        order=order,
        exclusions=exclusions,
        breakdown=draw(
            st.sampled_from([None, None, "channel", "k", "persona", "traits.persona", "cohort"])
        ),
        since=since,
        until=until,
        by=draw(st.sampled_from(["person", "person", "person", "session"])),
    )


@pytest.mark.slow
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(logs(), queries())
def test_sql_matches_the_brute_force_reference(
    rows: list[dict[str, Any]], query: FunnelQuery
) -> None:
    assert_matches_reference(rows, query)
