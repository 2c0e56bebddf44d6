"""Done when: a store owner's first session, driven in a real headless Chromium against a real
server — set up the account, import a CSV, read the journey map, create the abandoned-cart
journey from a pain point's solution, edit a step on the builder's canvas, publish, and find the
journey live in the list — asserting on what the pages show.

The server (:mod:`e2e_server`) runs on a fresh data folder holding the sample store (every
injected problem on: the mobile payment drop-off and the checkout errors are the pain points
whose solutions include the abandoned-cart follow-up). The test clicks what a person clicks,
located by label, role or the builder's ``data-testid``s, and checks the result through the
REST API as well, so a page that only *looks* right does not pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_server import EMAIL, PASSWORD, RunningServer, chromium_tab, running_server, seed_home

from wayline.journeymap.render.browser import find_chromium

CHROMIUM = find_chromium()
SOLUTION = "Abandoned-cart follow-up by WhatsApp or e-mail"
JOURNEY_ID = "abandoned-cart-recovery"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("e2e") / "data"
    with running_server(seed_home(home, with_user=False)) as running:
        yield running


@pytest.fixture
def page(server: RunningServer) -> Iterator[object]:
    # The map of a 40k-event store is built on first view: slow on a busy CI machine.
    with chromium_tab(server, timeout_ms=60_000) as tab:
        yield tab


def test_first_session_from_setup_to_a_live_abandoned_cart_journey(
    server: RunningServer, page: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    api = httpx.Client(base_url=server.url, headers=server.api_headers, timeout=60)

    # First visit: no account yet, so the store owner creates one and lands on the map.
    page.goto("/")
    expect(page).to_have_url(f"{server.url}/setup")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{server.url}/map")
    nav = page.get_by_role("navigation", name="Main")
    expect(
        page.get_by_role("link", name="Log out").or_(page.get_by_text("Log out"))
    ).to_be_visible()

    # Data: upload a CSV of orders; the page follows the import until it is done.
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "user_id,event,timestamp,revenue\n"
        "e2e-buyer-1,Order Completed,2026-11-20T10:00:00Z,42.50\n"
        "e2e-buyer-2,Order Completed,2026-11-21T11:30:00Z,19.90\n"
        "e2e-buyer-1,Order Completed,2026-11-25T09:15:00Z,7.00\n",
        encoding="utf-8",
    )
    nav.get_by_role("link", name="Data").click()
    page.get_by_label("File", exact=True).set_input_files(csv)
    page.get_by_label("Format").select_option("csv")
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#import-job")).to_contain_text("Imported 3 events from 3 rows.")
    buyers = api.get("/api/v1/customers", params={"q": "e2e-buyer"}).json()
    assert sorted(c["person_id"] for c in buyers["items"]) == ["e2e-buyer-1", "e2e-buyer-2"]

    # The journey map: a pain point whose solutions include the abandoned-cart follow-up.
    nav.get_by_role("link", name="Journey map").click()
    expect(page.get_by_role("heading", name="Pain points and what to do")).to_be_visible()
    pain_point = page.locator("article.pain-point").filter(has_text=SOLUTION).first
    expect(pain_point).to_contain_text("Money at stake")
    pain_point.get_by_role("button", name=f"Create journey: {SOLUTION}").click()

    # The builder opens on the new draft.
    expect(page).to_have_url(f"{server.url}/journeys/{JOURNEY_ID}")
    expect(page.get_by_test_id("journey-name")).to_have_text("Abandoned checkout recovery")
    expect(page.get_by_test_id("journey-status")).to_have_text("draft")
    wait = page.locator('[data-testid="node"][data-node-id="wait_1h"]')
    expect(wait).to_contain_text("1h")

    # Edit a step on the canvas: wait two hours instead of one, and save the draft.
    wait.click()
    panel = page.get_by_test_id("panel")
    panel.get_by_label("Duration").fill("2h")
    panel.get_by_label("Duration").press("Tab")
    expect(wait).to_contain_text("2h")
    page.get_by_test_id("save-draft").click()
    expect(page.get_by_test_id("builder-message")).to_contain_text("Draft saved")
    draft = api.get(f"/api/v1/journeys/{JOURNEY_ID}").json()
    steps = {s["id"]: s for s in draft["document"]["steps"]}
    assert steps["wait_1h"]["duration"] == "2h"

    # Publish: the page reloads showing the journey live, version 1.
    page.get_by_test_id("publish").click()
    expect(page.get_by_test_id("journey-status")).to_have_text("live")
    expect(page.get_by_test_id("live-version")).to_contain_text("version 1")

    # The list shows it, live.
    nav.get_by_role("link", name="Journeys").click()
    row = page.locator(f'tr[data-journey-id="{JOURNEY_ID}"]')
    expect(row).to_contain_text("Abandoned checkout recovery")
    expect(row.get_by_test_id("journey-status")).to_have_text("live")
    live = api.get(f"/api/v1/journeys/{JOURNEY_ID}").json()
    assert live["status"] == "live" and live["live_version"] == 1
    exported = api.get(f"/api/v1/journeys/{JOURNEY_ID}/export.yaml", params={"version": 1})
    assert exported.status_code == 200 and "duration: 2h" in exported.text


def test_wayline_serve_lets_the_dashboard_read_analytics(tmp_path: Path) -> None:
    # The command users run, mover and runtime included: its pages must read analytics.
    seeded = seed_home(tmp_path / "data", events=2_000)
    with running_server(seeded, command="serve") as server:
        r = httpx.get(
            f"{server.url}/api/v1/funnels",
            params={"steps": "Product Viewed,Order Completed"},
            headers=server.api_headers,
            timeout=60,
        )
    assert r.status_code == 200, r.text
