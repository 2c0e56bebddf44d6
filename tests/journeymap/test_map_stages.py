"""The stage mapping: default names, loose matching, the user's file and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline.errors import InputError
from wayline.journeymap.stages import (
    STAGES,
    StageMapping,
    default_mapping,
    load_mapping,
    normalize_name,
    parse_mapping,
    suggest,
)


@pytest.fixture(scope="module")
def mapping() -> StageMapping:
    return default_mapping()


@pytest.mark.parametrize(
    ("name", "stage", "role"),
    [
        # Segment e-commerce spec
        ("Product Viewed", "consideration", "product_view"),
        ("Product Added", "decision", "add_to_cart"),
        ("Checkout Started", "decision", "checkout"),
        ("Payment Info Entered", "decision", "payment"),
        ("Order Completed", "decision", "purchase"),
        ("Order Refunded", "retention", "refund"),
        ("Product Reviewed", "advocacy", "review"),
        ("Products Searched", "consideration", "search"),
        # GA4 recommended events
        ("view_item", "consideration", "product_view"),
        ("add_to_cart", "decision", "add_to_cart"),
        ("begin_checkout", "decision", "checkout"),
        ("add_payment_info", "decision", "payment"),
        ("purchase", "decision", "purchase"),
        ("refund", "retention", "refund"),
        ("view_item_list", "consideration", "product_list"),
        # snake_case, camelCase, pixels and other variants
        ("product_viewed", "consideration", "product_view"),
        ("productAdded", "decision", "add_to_cart"),
        ("AddToCart", "decision", "add_to_cart"),
        ("InitiateCheckout", "decision", "checkout"),
        ("checkout_completed", "decision", "purchase"),
        ("ORDER-COMPLETED", "decision", "purchase"),
        ("WhatsApp Message Read", "retention", "message_open"),
        ("email_opened", "retention", "message_open"),
        ("Order Delivered", "retention", "delivery"),
        ("Support Contacted", "retention", "support"),
        ("Checkout Error", "decision", "checkout_error"),
    ],
)
def test_default_names(mapping: StageMapping, name: str, stage: str, role: str) -> None:
    got = mapping.classify(name)
    assert (got.stage, got.role, got.known) == (stage, role, True)


def test_page_views_take_the_stage_of_their_path(mapping: StageMapping) -> None:
    assert mapping.classify("$page", "/products/linen-shirt").stage == "consideration"
    assert mapping.classify("$page", "/cart").touchpoint == "cart"
    assert mapping.classify("$page", "/checkout").stage == "decision"
    assert mapping.classify("$page", "/").stage == "awareness"
    assert mapping.classify("$page").stage == "awareness"


@pytest.mark.parametrize(
    ("name", "stage"),
    [
        ("Size Chart Opened", "consideration"),
        ("Gift Card Redeemed At Checkout", "decision"),
        ("Referral Link Shared", "advocacy"),
        ("Push Notification Subscribed", "retention"),
        ("Landing Video Played", "consideration"),
        ("xyzzy", "consideration"),
    ],
)
def test_unknown_names_get_a_suggestion(mapping: StageMapping, name: str, stage: str) -> None:
    got = mapping.classify(name)
    assert (got.stage, got.known, got.role) == (stage, False, None)
    assert suggest(name) == got


def test_roles_find_a_stores_funnel(mapping: StageMapping) -> None:
    names = ["view_item", "Product Viewed", "add_to_cart", "page_view", "Foo"]
    assert mapping.names_with_role("product_view", names) == ("Product Viewed", "view_item")
    assert mapping.stages_present(names) == STAGES[:4]  # no advocacy without reviews
    assert mapping.stages_present([*names, "Product Reviewed"]) == STAGES


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=30))
def test_normalize_ignores_case_and_separators(name: str) -> None:
    key = normalize_name(name)
    assert normalize_name(name.upper()) == key
    assert normalize_name(name.replace(" ", "_")) == key
    assert normalize_name(name.replace(" ", "-")) == key
    assert normalize_name(key) == key


USER_FILE = """\
events:
  Size Chart Opened: {stage: consideration, touchpoint: product_page, role: product_view}
  Order Completed: {stage: decision, touchpoint: checkout, role: purchase}
pages:
  - {prefix: /products/gift, stage: awareness, touchpoint: content}
stages:
  decision:
    goal: Checkout in two minutes
    thoughts: Is shipping free?
    ideas: ["Show the delivery date on the product page"]
"""


def test_user_file_adds_names_pages_and_notes(tmp_path: Path) -> None:
    (tmp_path / "journeymap.yaml").write_text(USER_FILE)
    m = load_mapping(tmp_path)
    assert m.classify("size_chart_opened").known
    assert m.role("Size Chart Opened") == "product_view"
    # The owner's page rule wins over the default /products rule.
    assert m.classify("$page", "/products/gift-box").stage == "awareness"
    assert m.classify("$page", "/products/mug").stage == "consideration"
    notes = m.notes_for("decision")
    assert notes.goal == "Checkout in two minutes"
    assert notes.thoughts == ("Is shipping free?",)
    assert notes.ideas == ("Show the delivery date on the product page",)
    assert m.notes_for("awareness").is_empty
    assert str(tmp_path / "journeymap.yaml") in m.sources


def test_no_user_file_is_the_default(tmp_path: Path) -> None:
    assert load_mapping(tmp_path).events == default_mapping().events


@pytest.mark.parametrize(
    ("text", "row", "field", "message"),
    [
        (
            "events:\n  a: {stage: decision, touchpoint: cart}\n  b:\n    stage: nope\n"
            "    touchpoint: x\n",
            4,
            "events.b.stage",
            "awareness",
        ),
        (
            "events:\n  a: {stage: decision, touchpoint: cart, rol: x}\n",
            2,
            "events.a.rol",
            "unknown field",
        ),
        (
            "events:\n  a: {stage: decision, touchpoint: cart, role: buy}\n",
            2,
            "events.a.role",
            "unknown role",
        ),
        ("pages:\n  - {prefix: /x, stage: decision}\n", 2, "pages.0.touchpoint", "required"),
        ("stages:\n  checkout: {notes: [x]}\n", 2, "stages.checkout", "unknown stage"),
        ("events: [\n", 2, None, "not valid YAML"),
        ("- just\n- a list\n", 1, None, "expected a mapping"),
    ],
)
def test_user_file_errors_name_line_and_field(
    text: str, row: int, field: str | None, message: str
) -> None:
    with pytest.raises(InputError) as info:
        parse_mapping(text, "journeymap.yaml")
    err = info.value
    assert (err.source, err.row, err.field) == ("journeymap.yaml", row, field)
    assert message in err.message
