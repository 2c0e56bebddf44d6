"""The journey builder's canvas by mouse, in a real headless Chromium: drag a step from the
palette onto an arrow to insert it there, drag a node's outlet onto another step to connect
them — then save, and read the draft back through the REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_server import EMAIL, PASSWORD, RunningServer, chromium_tab, running_server, seed_home

from wayline.journeymap.render.browser import find_chromium

CHROMIUM = find_chromium()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)"),
]

JOURNEY = {
    "id": "follow-up",
    "name": "Follow-up",
    "trigger": {"event": "Checkout Started"},
    "goal": {"event": "Order Completed", "within": "7d"},
    "steps": [
        {"id": "remind", "type": "send", "channel": "email", "template": "abandoned_cart",
         "next": "last_call"},
        {"id": "last_call", "type": "send", "channel": "email", "template": "abandoned_cart"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("builder") / "data"
    with running_server(seed_home(home, events=0)) as running:
        yield running


@pytest.fixture
def page(server: RunningServer) -> Iterator[object]:
    with chromium_tab(server) as tab:
        yield tab


def open_builder(page: object, journey_id: str) -> None:
    """Log in and open the builder on ``journey_id``, ready for input."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/login")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/journeys/{journey_id}")
    expect(page.locator("#builder")).to_have_attribute("data-ready", "true")


def drag(page: object, source: object, target: object) -> None:
    """Press on ``source``, move in steps onto ``target``, release (what a hand does)."""
    from playwright.sync_api import Locator, Page

    assert isinstance(page, Page) and isinstance(source, Locator) and isinstance(target, Locator)
    a, b = source.bounding_box(), target.bounding_box()
    assert a is not None and b is not None
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=8)
    page.mouse.up()


def test_steps_are_inserted_and_connected_by_dragging(
    server: RunningServer, page: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    api = httpx.Client(base_url=server.url, headers=server.api_headers, timeout=30)
    assert api.post("/api/v1/journeys", json=JOURNEY).status_code == 201
    open_builder(page, "follow-up")

    # A delay dragged from the palette onto the arrow between the two e-mails.
    delay = page.get_by_test_id("palette").locator('[data-step-kind="delay"]')
    arrow = page.locator('.drop-zone[data-drop-from="remind"]')
    delay.drag_to(arrow)
    node = page.locator('[data-testid="node"][data-node-id="delay"]')
    expect(node).to_be_visible()
    expect(page.get_by_test_id("panel")).to_contain_text("Delay")
    doc = page.evaluate("window.waylineBuilder.document()")
    steps = {s["id"]: s for s in doc["steps"]}
    assert steps["remind"]["next"] == "delay" and steps["delay"]["next"] == "last_call"

    # The delay's outlet dragged onto the first e-mail: a loop back (the validator will have
    # its say); then back onto the last call, as it was.
    handle = page.locator('.outlet-handle[data-handle-from="delay"]')
    drag(page, handle, page.locator('[data-testid="node"][data-node-id="remind"]'))
    expect(page.get_by_test_id("builder-message")).to_contain_text("now goes to")
    assert page.evaluate("window.waylineBuilder.document()")["steps"][2]["next"] == "remind"
    drag(page, handle, page.locator('[data-testid="node"][data-node-id="last_call"]'))
    # The trigger's outlet onto the delay: the journey now starts with it.
    drag(
        page,
        page.locator('.outlet-handle[data-handle-from="$trigger"]'),
        page.locator('[data-testid="node"][data-node-id="delay"]'),
    )

    page.get_by_test_id("save-draft").click()
    expect(page.get_by_test_id("builder-message")).to_contain_text("Draft saved")
    saved = api.get("/api/v1/journeys/follow-up").json()["document"]
    assert [s["id"] for s in saved["steps"]] == ["delay", "remind", "last_call"]
    by_id = {s["id"]: s for s in saved["steps"]}
    assert by_id["delay"] == {"id": "delay", "type": "delay", "duration": "1d", "next": "last_call"}
    assert by_id["remind"]["next"] == "delay"


BRANCHING = {
    "id": "vip-offer",
    "name": "VIP offer",
    "trigger": {"event": "Product Viewed"},
    "steps": [
        {"id": "tier", "type": "switch",
         "cases": [{"name": "vip", "when": {"trait": "vip", "value": True}, "next": "offer"}],
         "default": "offer"},
        {"id": "offer", "type": "send", "channel": "email", "template": "abandoned_cart"},
    ],
}  # fmt: skip


def add_filter(panel: object, n: int, prop: str, op: str | None, value: str) -> None:
    """Add the ``n``-th filter row of the panel's "Where (filters)" and fill it in, leaving
    each field as a person does (Tab), which is when the builder reads it."""
    from playwright.sync_api import Locator

    assert isinstance(panel, Locator)
    label = f"Where (filters) {n}"
    panel.get_by_role("button", name="Add filter").click()
    panel.get_by_label(f"{label}: property").fill(prop)
    panel.get_by_label(f"{label}: property").press("Tab")
    if op is not None:
        panel.get_by_label(f"{label}: operator").select_option(op)
    panel.get_by_label(f"{label}: value").fill(value)
    panel.get_by_label(f"{label}: value").press("Tab")


def test_filters_and_conditions_are_forms(server: RunningServer, page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    api = httpx.Client(base_url=server.url, headers=server.api_headers, timeout=30)
    assert api.post("/api/v1/journeys", json=BRANCHING).status_code == 201
    open_builder(page, "vip-offer")
    panel = page.get_by_test_id("panel")

    # The trigger: only views of one product worth at least 20.
    page.locator('[data-testid="node"][data-node-id="$trigger"]').click()
    add_filter(panel, 1, "product_id", None, "skincare-cream")
    add_filter(panel, 2, "price", "gte", "20")

    # The switch's case: the trait is one of two tiers, not a yes/no.
    page.locator('[data-testid="node"][data-node-id="tier"]').click()
    expect(panel.get_by_label("When")).to_have_value("trait")
    panel.get_by_label("Operator").select_option("in")
    panel.get_by_label("Trait").fill("tier")
    panel.get_by_label("Trait").press("Tab")
    panel.get_by_label("Value").fill("gold, silver")
    panel.get_by_label("Value").press("Tab")

    page.get_by_test_id("save-draft").click()
    expect(page.get_by_test_id("builder-message")).to_contain_text("Draft saved")
    saved = api.get("/api/v1/journeys/vip-offer").json()
    assert saved["document"]["trigger"] == {
        "event": "Product Viewed",
        "where": {"product_id": "skincare-cream", "price": {"gte": 20}},
    }
    case = saved["document"]["steps"][0]["cases"][0]
    assert case["when"] == {"trait": "tier", "value": ["gold", "silver"], "op": "in"}
    assert saved["problems"] == []
