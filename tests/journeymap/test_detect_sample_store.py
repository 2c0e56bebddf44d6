"""Pain points on the sample store: every injected problem is found where the simulator hid it
(segment, step, time range), ranked by revenue at stake; a clean store raises no high-severity
alarm; and a store that names its events and properties differently (GA4-style names, no
session ids) gets the same findings — no detector keys on the simulator's names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from wayline.analytics.backend import DuckDBBackend
from wayline.events.simulator import (
    InjectedProblem,
    ProblemKind,
    SimulatedStore,
    StoreConfig,
    load_store,
    simulate_store,
)
from wayline.journeymap.detectors import DETECTORS, StoreView
from wayline.journeymap.painpoints import DetectionContext, PainPoint, detect_pain_points
from wayline.journeymap.stages import default_mapping
from wayline.storage.eventstore import EventStore

pytestmark = pytest.mark.slow

CUSTOMERS = 6000  # ~125 k events: every problem shows, a clean store stays flat
DAY = timedelta(days=1)

#: Segment e-commerce names → the names of a store the detectors have never seen.
RENAMED_EVENTS = {
    "$page": "page_view",
    "Product Viewed": "view_item",
    "Product Added": "add_to_cart",
    "Cart Viewed": "view_cart",
    "Checkout Started": "begin_checkout",
    "Checkout Error": "checkout_failed",
    "Payment Info Entered": "add_payment_info",
    "Payment Failed": "payment_error",
    "Order Completed": "purchase",
    "Order Delivered": "delivery_completed",
    "Order Refunded": "refund",
    "Support Contacted": "support_ticket_created",
}
RENAMED_PROPERTIES = {"has_reviews": "reviewsAvailable", "late": "deliveredLate"}


def context(sim: SimulatedStore, segment: dict[str, str] | None = None) -> DetectionContext:
    cfg = sim.config
    return DetectionContext(
        cfg.workspace_id,
        cfg.start,
        cfg.start + timedelta(days=cfg.days),
        default_mapping(),
        segment=segment,
    )


def _store(tmp: Path, sim: SimulatedStore) -> Iterator[EventStore]:
    with EventStore(tmp / "events.duckdb") as store:
        load_store(store, sim)
        yield store


@pytest.fixture(scope="module")
def problem_store() -> SimulatedStore:
    return simulate_store(StoreConfig(seed=21, customers=CUSTOMERS))


@pytest.fixture(scope="module")
def problem_db(
    tmp_path_factory: pytest.TempPathFactory, problem_store: SimulatedStore
) -> Iterator[EventStore]:
    yield from _store(tmp_path_factory.mktemp("problems"), problem_store)


@pytest.fixture(scope="module")
def found(problem_db: EventStore, problem_store: SimulatedStore) -> list[PainPoint]:
    return detect_pain_points(DuckDBBackend(problem_db.con), context(problem_store))


#: The kind of pain point each injected problem must come out as.
EXPECTED_KIND = {
    ProblemKind.MOBILE_PAYMENT_DROPOFF: "segment_step_dropoff",
    ProblemKind.PAYMENT_OUTAGE: "incident",
    ProblemKind.MISSING_REVIEWS: "product_content",
    ProblemKind.LATE_DELIVERY_CHURN: "churn_after_bad_experience",
    ProblemKind.SOCIAL_NO_BUY: "channel_browses_no_buy",
    ProblemKind.CHECKOUT_LOOP: "errors_after_step",
}


def matches(
    point: PainPoint,
    truth: InjectedProblem,
    events: dict[str, str] | None = None,
    properties: dict[str, str] | None = None,
) -> bool:
    """Whether a pain point is the injected problem: its step, segment and time range."""
    events, properties = events or {}, properties or {}
    steps = tuple(events.get(s, s) for s in truth.steps)
    if point.kind != EXPECTED_KIND[truth.kind] or point.step_events != steps:
        return False
    ev = point.evidence
    if truth.kind is ProblemKind.PAYMENT_OUTAGE:
        # An incident: no segment, its own time range, to the day.
        return (
            ev.segment == {}
            and abs(ev.since - truth.start) <= DAY
            and abs(ev.until - truth.end) <= DAY
        )

    def key(k: str) -> str:
        root, _, name = k.partition(".")
        return f"{root}.{properties.get(name, name)}" if root == "properties" else k

    segment = {key(k): v for k, v in truth.segment}
    return ev.segment == segment and ev.since <= truth.start and ev.until >= truth.end


def test_every_injected_problem_is_found(
    found: list[PainPoint], problem_store: SimulatedStore
) -> None:
    for truth in problem_store.ground_truth:
        hits = [p for p in found if matches(p, truth)]
        assert len(hits) == 1, (
            truth.kind,
            [(p.kind, p.step_events, p.evidence.segment) for p in found],
        )
        point = hits[0]
        assert point.solutions, truth.kind
        ev = point.evidence
        assert ev.affected_customers > 0 and ev.revenue_at_stake > 0
        # The metric moved the way the simulator moved it, and measures what it measured.
        assert (ev.value > ev.baseline) == (truth.injected_factor > 1), truth.kind
        assert ev.value == pytest.approx(truth.measurement.affected.value, abs=0.02), truth.kind
        assert ev.affected_customers == pytest.approx(truth.affected_customers, rel=0.05, abs=3)


def test_the_big_problems_are_high_severity(
    found: list[PainPoint], problem_store: SimulatedStore
) -> None:
    for kind in (
        ProblemKind.MOBILE_PAYMENT_DROPOFF,
        ProblemKind.MISSING_REVIEWS,
        ProblemKind.SOCIAL_NO_BUY,
        ProblemKind.CHECKOUT_LOOP,
        ProblemKind.PAYMENT_OUTAGE,
    ):
        truth = problem_store.problem(kind)
        [point] = [p for p in found if matches(p, truth)]
        assert point.severity == "high", (kind, point.evidence)


def test_pain_points_are_ranked_by_revenue_at_stake(found: list[PainPoint]) -> None:
    stakes = [p.evidence.revenue_at_stake for p in found]
    assert stakes == sorted(stakes, reverse=True)


def test_outage_window_is_the_simulators(
    found: list[PainPoint], problem_store: SimulatedStore
) -> None:
    truth = problem_store.problem(ProblemKind.PAYMENT_OUTAGE)
    [incident] = [p for p in found if p.kind == "incident"]
    assert (incident.evidence.since, incident.evidence.until) == (truth.start, truth.end)


def test_a_segment_map_only_sees_its_segment(
    problem_db: EventStore, problem_store: SimulatedStore
) -> None:
    desktop = detect_pain_points(
        DuckDBBackend(problem_db.con), context(problem_store, segment={"device_type": "desktop"})
    )
    assert not any(p.evidence.segment.get("device_type") == "mobile" for p in desktop)
    loop = problem_store.problem(ProblemKind.CHECKOUT_LOOP)
    assert any(matches(p, loop) for p in desktop)


def test_a_persona_map_runs_on_that_persona(
    problem_db: EventStore, problem_store: SimulatedStore
) -> None:
    points = detect_pain_points(
        DuckDBBackend(problem_db.con),
        context(problem_store, segment={"traits.persona": "mobile_first_browser"}),
    )
    # Mobile-first browsers are on phones: their map shows the problems that are not about
    # the device, e.g. products without reviews.
    reviews = problem_store.problem(ProblemKind.MISSING_REVIEWS)
    assert any(matches(p, reviews) for p in points)


@pytest.fixture(scope="module")
def clean_db(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EventStore, SimulatedStore]]:
    clean = simulate_store(StoreConfig(seed=22, customers=CUSTOMERS, problems=frozenset()))
    for store in _store(tmp_path_factory.mktemp("clean"), clean):
        yield store, clean


def test_clean_store_raises_no_high_severity_alarm(
    clean_db: tuple[EventStore, SimulatedStore],
) -> None:
    store, clean = clean_db
    points = detect_pain_points(DuckDBBackend(store.con), context(clean))
    assert [p for p in points if p.severity == "high"] == []
    # Not even a medium one: the thresholds leave a flat store flat.
    assert [(p.kind, p.evidence.segment) for p in points if p.severity != "low"] == []


@pytest.fixture(scope="module")
def clean_view(clean_db: tuple[EventStore, SimulatedStore]) -> StoreView:
    # One view for all detectors: it caches the queries they share, as detect_pain_points does.
    store, clean = clean_db
    return StoreView(DuckDBBackend(store.con), context(clean))


@pytest.fixture(scope="module")
def problem_view(problem_db: EventStore, problem_store: SimulatedStore) -> StoreView:
    return StoreView(DuckDBBackend(problem_db.con), context(problem_store))


@pytest.mark.parametrize("kind", list(DETECTORS))
def test_each_detector_is_quiet_on_a_clean_store(kind: str, clean_view: StoreView) -> None:
    assert DETECTORS[kind](clean_view) == []


#: What each detector finds on its own in the problem store, before findings are merged:
#: (step, segment) pairs that must be among its findings.
ON_ITS_OWN: dict[str, list[tuple[tuple[str, str], dict[str, str]]]] = {
    "segment_step_dropoff": [
        (("Checkout Started", "Payment Info Entered"), {"device_type": "mobile"}),
        (("Product Viewed", "Product Added"), {"channel": "social"}),
    ],
    "incident": [(("Payment Info Entered", "Order Completed"), {})],
    "checkout_loop": [(("Checkout Started", "Cart Viewed"), {"country": "FR"})],
    "errors_after_step": [(("Checkout Started", "Checkout Error"), {"country": "FR"})],
    "support_after_step": [(("Checkout Started", "Support Contacted"), {"country": "FR"})],
    "product_content": [(("Product Viewed", "Product Added"), {"properties.has_reviews": "false"})],
    "churn_after_bad_experience": [
        (("Order Delivered", "Order Completed"), {"properties.late": "true"})
    ],
    "channel_browses_no_buy": [(("$page", "Order Completed"), {"channel": "social"})],
    # No problem makes anyone slower on purpose; social visitors who end up buying do take
    # longer (they browse long before their rare purchase), which is true of the data.
    "slow_conversion": [],
}


@pytest.mark.parametrize("kind", list(DETECTORS))
def test_each_detector_finds_its_problems(kind: str, problem_view: StoreView) -> None:
    found = [(f.step_events, f.evidence.segment) for f in DETECTORS[kind](problem_view)]
    for expected in ON_ITS_OWN[kind]:
        assert expected in found, (kind, found)


def test_a_store_with_unseen_names_gets_the_same_findings(
    tmp_path_factory: pytest.TempPathFactory, problem_store: SimulatedStore
) -> None:
    for store in _store(tmp_path_factory.mktemp("renamed"), problem_store):
        con = store.con
        for old, new in RENAMED_EVENTS.items():
            con.execute("UPDATE events SET event = ? WHERE event = ?", [new, old])
        for old, new in RENAMED_PROPERTIES.items():
            con.execute(
                "UPDATE events SET properties = CAST(replace(CAST(properties AS VARCHAR), ?, ?) "
                "AS JSON)",
                [f'"{old}":', f'"{new}":'],
            )
        # No SDK session ids either: visits are inferred from 30 minutes of inactivity.
        con.execute("UPDATE events SET session_id = NULL")
        points = detect_pain_points(DuckDBBackend(con), context(problem_store))
    for truth in problem_store.ground_truth:
        assert any(matches(p, truth, RENAMED_EVENTS, RENAMED_PROPERTIES) for p in points), (
            truth.kind,
            [(p.kind, p.step_events, p.evidence.segment) for p in points],
        )
