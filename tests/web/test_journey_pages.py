"""The journeys pages: the list, creating and importing, and the builder — its embedded data
served to the canvas, and (in a real Chromium) editing a step on the canvas and saving."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from dashboard_fixtures import PASSWORD, Site

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"


def embedded(html: str) -> dict[str, Any]:
    marker = '<script type="application/json" id="journey-data">'
    assert marker in html
    data: dict[str, Any] = json.loads(html.split(marker, 1)[1].split("</script>", 1)[0])
    return data


def import_example(site: Site, name: str) -> str:
    text = (EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8")
    r = site.client.post(
        "/api/v1/journeys/import",
        content=text.encode(),
        headers={**site.a.headers, "content-type": "application/yaml"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_list_shows_status_and_headline_results(site: Site) -> None:
    browser = site.browser()
    assert "No journeys yet" in browser.get("/journeys").text
    import_example(site, "abandoned-cart")
    import_example(site, "welcome")
    site.client.post("/api/v1/journeys/welcome/publish", headers=site.a.headers)
    html = browser.get("/journeys").text
    assert 'data-journey-id="abandoned-cart"' in html and 'href="/journeys/welcome"' in html
    row = html.split('data-journey-id="welcome"', 1)[1].split("</tr>", 1)[0]
    assert '<span class="badge live" data-testid="journey-status">live</span>' in row
    cart_row = html.split('data-journey-id="abandoned-cart"', 1)[1].split("</tr>", 1)[0]
    assert '<span class="badge draft" data-testid="journey-status">draft</span>' in cart_row
    # Another workspace's dashboard lists nothing of it.
    assert "No journeys yet" in site.browser(site.b).get("/journeys").text
    assert TestClient(site.app, follow_redirects=False).get("/journeys").status_code == 303


def test_new_journey_form_creates_a_draft_and_opens_the_builder(site: Site) -> None:
    browser = site.browser()
    form = {"name": "Browse abandonment", "journey_id": "browse", "trigger_event": "Product Viewed"}
    assert browser.post("/journeys/new", data=form).status_code == 403  # no CSRF token
    r = browser.post("/journeys/new", data={**form, "csrf_token": site.csrf(browser)})
    assert r.status_code == 303 and r.headers["location"] == "/journeys/browse"
    data = embedded(browser.get("/journeys/browse").text)
    assert data["journey"]["document"]["trigger"] == {"event": "Product Viewed"}
    assert data["journey"]["valid"] and data["stats"] is None
    again = browser.post("/journeys/new", data={**form, "csrf_token": site.csrf(browser)})
    assert again.status_code == 400 and "exists already" in again.text
    bad = browser.post(
        "/journeys/new", data={**form, "journey_id": "no spaces", "csrf_token": site.csrf(browser)}
    )
    assert bad.status_code == 400 and "field &#39;id&#39;" in bad.text


def test_import_form_takes_pasted_yaml_or_a_file(site: Site) -> None:
    browser = site.browser()
    token = site.csrf(browser)
    text = (EXAMPLES / "win-back.yaml").read_text(encoding="utf-8")
    r = browser.post("/journeys/import", data={"csrf_token": token, "yaml_text": text})
    assert r.status_code == 303 and r.headers["location"] == "/journeys/win-back"
    upload = (EXAMPLES / "welcome.yaml").read_bytes()
    r = browser.post(
        "/journeys/import",
        data={"csrf_token": token},
        files={"file": ("welcome.yaml", upload, "application/yaml")},
    )
    assert r.status_code == 303 and r.headers["location"] == "/journeys/welcome"
    bad = browser.post("/journeys/import", data={"csrf_token": token, "yaml_text": "id: [x"})
    assert bad.status_code == 400 and "not valid YAML" in bad.text
    empty = browser.post("/journeys/import", data={"csrf_token": token, "yaml_text": " "})
    assert empty.status_code == 400


def test_builder_embeds_the_document_problems_and_stats(site: Site) -> None:
    browser = site.browser()
    import_example(site, "abandoned-cart")
    html = browser.get("/journeys/abandoned-cart").text
    assert '<script src="/static/builder.js" defer></script>' in html
    assert 'data-testid="canvas"' in html and 'data-testid="publish"' in html
    data = embedded(html)
    document = data["journey"]["document"]
    import yaml

    assert document == yaml.safe_load((EXAMPLES / "abandoned-cart.yaml").read_text())
    assert data["api"] == "/api/v1/journeys/abandoned-cart"
    assert "abandoned_cart" in data["templates"]
    assert {k["value"] for k in data["step_kinds"]} >= {"send:email", "split", "wait_for", "exit"}
    # An invalid draft's problems arrive with the node at fault; a published one with stats.
    document["steps"][1]["duration"] = "whenever"
    site.client.put("/api/v1/journeys/abandoned-cart", json=document, headers=site.a.headers)
    data = embedded(browser.get("/journeys/abandoned-cart").text)
    assert [(p["node"], p["field"]) for p in data["journey"]["problems"]] == [
        ("wait_2h", "duration")
    ]
    document["steps"][1]["duration"] = "2h"
    site.client.put("/api/v1/journeys/abandoned-cart", json=document, headers=site.a.headers)
    site.client.post("/api/v1/journeys/abandoned-cart/publish", headers=site.a.headers)
    data = embedded(browser.get("/journeys/abandoned-cart").text)
    assert data["stats"]["entered"] == 0
    assert [s["step_id"] for s in data["stats"]["steps"]][:2] == ["holdout_split", "wait_2h"]


def test_builder_is_per_workspace_and_escapes_what_it_embeds(site: Site) -> None:
    site.client.post(
        "/api/v1/journeys",
        json={
            "id": "x",
            "name": "</script><script>alert(1)</script>",
            "trigger": {"event": "A"},
            "steps": [{"id": "s", "type": "exit"}],
        },
        headers=site.a.headers,
    )
    html = site.browser().get("/journeys/x").text
    assert "<script>alert(1)" not in html
    assert embedded(html)["journey"]["name"] == "</script><script>alert(1)</script>"
    r = site.browser(site.b).get("/journeys/x")
    assert r.status_code == 404 and "No such journey" in r.text


# --- the canvas in a real browser --------------------------------------------------------------


@pytest.fixture
def served(site: Site) -> Iterator[str]:
    """The site's app under uvicorn in a thread, on a free port."""
    config = uvicorn.Config(site.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_canvas_round_trips_edits_a_step_shows_errors_publishes_archives(
    site: Site, served: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    import_example(site, "abandoned-cart")
    stored = site.client.get("/api/v1/journeys/abandoned-cart", headers=site.a.headers).json()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{served}/login?next=/journeys/abandoned-cart")
            page.fill("#email", site.a.email)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector('#builder[data-ready="true"]')
            # Every step is a node; loading and saving without edits changes nothing.
            ids = page.eval_on_selector_all(
                '[data-testid="node"]', "els => els.map(e => e.dataset.nodeId)"
            )
            assert set(ids) == {"$trigger", "$goal"} | {
                s["id"] for s in stored["document"]["steps"]
            }
            assert page.evaluate("window.waylineBuilder.document()") == stored["document"]
            page.click('[data-testid="save-draft"]')
            expect(page.get_by_test_id("builder-message")).to_contain_text("Draft saved")
            again = site.client.get("/api/v1/journeys/abandoned-cart", headers=site.a.headers)
            assert again.json()["document"] == stored["document"]

            # Edit a step: an invalid duration is shown on that node after checking.
            page.click('[data-node-id="wait_2h"]')
            page.fill('#panel [data-field="duration"]', "soonish")
            page.press('#panel [data-field="duration"]', "Tab")
            page.click('[data-testid="validate"]')
            node_errors = page.locator('[data-node-id="wait_2h"] [data-testid="node-errors"]')
            expect(node_errors).to_contain_text("duration")
            page.click('[data-testid="publish"]')
            expect(page.get_by_test_id("builder-message")).to_contain_text("Not published")

            # Fix it, insert a step after it from the panel, and publish.
            page.click('[data-node-id="wait_2h"]')
            page.fill('#panel [data-field="duration"]', "3h")
            page.press('#panel [data-field="duration"]', "Tab")
            page.select_option('#panel [data-insert-kind="next"]', "send:sms")
            page.click('#panel [data-testid="insert-step"][data-outlet="next"]')
            expect(page.locator('[data-node-id="sms"]')).to_be_visible()
            page.click('[data-testid="publish"]')
            expect(page.get_by_test_id("journey-status")).to_have_text("live")
            expect(
                page.locator('[data-node-id="wait_2h"] [data-testid="node-stats"]')
            ).to_contain_text("0 entered")
            page.set_viewport_size({"width": 390, "height": 800})  # a phone: panel below canvas
            page.click('[data-node-id="sms"]')
            stacked = page.evaluate(
                """() => {
                  const canvas = document.querySelector(".canvas-wrap").getBoundingClientRect();
                  const panel = document.querySelector("#panel").getBoundingClientRect();
                  return panel.top >= canvas.bottom && panel.width > 300;
                }"""
            )
            assert stacked
            # Archiving asks first, then leaves a read-only page.
            page.on("dialog", lambda dialog: dialog.accept())
            page.click('[data-testid="archive"]')
            expect(page.get_by_test_id("journey-status")).to_have_text("archived")
            expect(page.get_by_test_id("save-draft")).to_have_count(0)
        finally:
            browser.close()
    live = site.client.get("/api/v1/journeys/abandoned-cart", headers=site.a.headers).json()
    steps = {s["id"]: s for s in live["document"]["steps"]}
    assert live["status"] == "archived" and live["live_version"] == 1
    assert steps["wait_2h"] == {"id": "wait_2h", "type": "delay", "duration": "3h", "next": "sms"}
    assert steps["sms"]["channel"] == "sms" and steps["sms"]["next"] == "channel_choice"
