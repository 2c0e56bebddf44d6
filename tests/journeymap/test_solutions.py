"""The solutions library: every kind of pain point has solutions, every journey template is a
valid journey, and templates adapt to a store's own event names."""

from __future__ import annotations

from pathlib import Path

import pytest

from wayline.errors import InputError
from wayline.journeymap.detectors import DETECTORS
from wayline.journeymap.solutions import load_library, parse_library
from wayline.journeys import load_journey
from wayline.journeys.model import EventTrigger

TEMPLATES = sorted(
    (Path(__file__).parents[2] / "src/wayline/journeymap/solutions/journeys").glob("*.yaml")
)


def test_every_pain_point_kind_has_solutions() -> None:
    lib = load_library()
    for kind in DETECTORS:
        assert lib.for_pain_point(kind), kind
    assert set(lib.by_kind) == set(DETECTORS)


def test_issue_solutions_are_in_the_library() -> None:
    titles = " ".join(s.title.lower() for s in load_library().solutions.values())
    for words in (
        "reviews and ratings",
        "product content",
        "simplify checkout",
        "return policy",
        "abandoned-cart follow-up",
        "post-purchase follow-up",
        "win-back offer",
        "personalised offers",
    ):
        assert words in titles, words


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_template_loads_with_load_journey(path: Path) -> None:
    journey = load_journey(path)
    assert journey.id == path.stem


def test_every_journey_of_the_library_is_shipped_and_valid() -> None:
    lib = load_library()
    shipped = {p.name for p in TEMPLATES}
    with_journeys = lib.with_journeys()
    assert {s.journey for s in with_journeys} == shipped
    for s in with_journeys:
        journey = s.journey_for()
        assert journey is not None and journey.id == Path(str(s.journey)).stem
        assert s.expected_effect


def test_templates_take_the_stores_event_names() -> None:
    cart = load_library().solutions["abandoned_cart_follow_up"]
    journey = cart.journey_for({"checkout": "begin_checkout", "purchase": "purchase"})
    assert journey is not None
    assert isinstance(journey.trigger, EventTrigger)
    assert journey.trigger.matcher.event == "begin_checkout"
    assert journey.goal is not None and journey.goal.matcher.event == "purchase"
    late = load_library().solutions["late_delivery_apology"]
    renamed = late.journey_for(
        {"delivery": "delivery_completed"}, properties={"late": "deliveredLate"}
    )
    assert renamed is not None and isinstance(renamed.trigger, EventTrigger)
    assert renamed.trigger.matcher.event == "delivery_completed"
    assert [f.property for f in renamed.trigger.matcher.where] == ["deliveredLate"]


def test_solutions_depend_on_the_segment() -> None:
    lib = load_library()
    mobile = [s.id for s in lib.for_pain_point("segment_step_dropoff", {"device_type": "mobile"})]
    france = [s.id for s in lib.for_pain_point("segment_step_dropoff", {"country": "FR"})]
    assert "mobile_checkout" in mobile and "mobile_checkout" not in france
    late = [
        s.id for s in lib.for_pain_point("churn_after_bad_experience", {"properties.late": "true"})
    ]
    refund = [s.id for s in lib.for_pain_point("churn_after_bad_experience", {"event": "refund"})]
    assert late[0] == "late_delivery_apology" and "late_delivery_apology" not in refund


def test_an_invalid_library_is_refused_with_where() -> None:
    with pytest.raises(InputError, match="unknown solution 'nope'"):
        parse_library("solutions: {}\npain_points: {incident: [nope]}\n", source="lib.yaml")
    with pytest.raises(InputError) as err:
        parse_library("solutions: {x: {title: T}}\npain_points: {}\n", source="lib.yaml")
    assert err.value.source == "lib.yaml" and err.value.field is not None


def test_a_solution_says_where_its_template_is_and_its_channel() -> None:
    lib = load_library()
    cart = lib.solutions["abandoned_cart_follow_up"]
    assert cart.journey_template is not None
    assert load_journey(cart.journey_template).id == "abandoned-cart-recovery"
    assert cart.channel == "email or whatsapp"
    assert lib.solutions["simplify_checkout"].journey_template is None
    assert lib.solutions["simplify_checkout"].channel is None
