"""The HTML map in a real headless Chromium: what a store owner sees on the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from map_logs import T0, open_store, small_store_rows

from wayline.journeymap.build import MapQuery, build_map
from wayline.journeymap.model import (
    EvidenceView,
    JourneyMap,
    PainPointView,
    SolutionView,
)
from wayline.journeymap.render.browser import CHROMIUM_ARGS, find_chromium, render_in_browser
from wayline.journeymap.render.html import render_html
from wayline.journeymap.stages import parse_mapping

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)"
)

PAIN = PainPointView(
    kind="segment_step_dropoff",
    title="Mobile shoppers are lost between checkout and payment",
    stage="decision",
    step="Checkout Started → Payment Info Entered",
    severity="high",
    evidence=EvidenceView(
        metric="share of visits with Checkout Started that reach Payment Info Entered",
        value=0.31,
        baseline=0.77,
        unit="visits",
        affected_customers=1562,
        revenue_at_stake=Decimal("1234.50"),
        since=T0,
        until=T0 + timedelta(days=10),
        segment={"device_type": "mobile"},
        detail="523 of 1691 mobile visits went on.",
    ),
    solutions=(
        SolutionView(
            key="fix_mobile_checkout",
            title="Fix the mobile checkout",
            description="Test the checkout on phones.",
            template="abandoned-cart-recovery.yaml",
        ),
    ),
)
NOTES = """\
stages:
  decision:
    goal: Checkout in two minutes
    thoughts: ["Is shipping free?"]
    feelings: [anxious about delivery costs]
"""


@pytest.fixture(scope="module")
def journey_map(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JourneyMap]:
    store, backend = open_store(tmp_path_factory.mktemp("html"), small_store_rows())
    with store:
        m = build_map(
            backend,
            MapQuery(since=T0, until=T0 + timedelta(days=10), compare_previous=True),
            parse_mapping(NOTES),
            now=T0 + timedelta(days=11),
        )
    yield replace(m, views=(replace(m.views[0], pain_points=(PAIN,)),))


def test_html_is_self_contained(journey_map: JourneyMap) -> None:
    html = render_html(journey_map)
    # No script, no stylesheet or image fetched from anywhere.
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html


def test_user_text_is_escaped(journey_map: JourneyMap) -> None:
    evil = replace(PAIN, title="<img src=x onerror=alert(1)>")
    m = replace(journey_map, views=(replace(journey_map.views[0], pain_points=(evil,)),))
    html = render_html(m)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


@needs_chromium
def test_map_renders_in_headless_chromium(journey_map: JourneyMap, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    html_path = tmp_path / "map.html"
    html_path.write_text(render_html(journey_map), encoding="utf-8")
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html_path.as_uri())
            text = page.inner_text("body")
            # The stage lanes, in order, as column headers.
            headers = page.locator("table.lanes thead th").all_inner_texts()
            assert [h.split("\n")[0] for h in headers[1:]] == [
                "Awareness",
                "Consideration",
                "Decision",
                "Retention",
                "Advocacy",
            ]
            assert "Checkout in two minutes" in headers[3]
            # Figures with their change against the previous period.
            assert "Conversion rate: 25.0 %" in text
            # The pain point with its evidence and its solution.
            card = page.locator("article.pp").first
            card_text = card.inner_text()
            assert "Mobile shoppers are lost between checkout and payment" in card_text
            assert "31.0 %" in card_text and "77.0 %" in card_text
            assert "1,562" in card_text
            assert "€1,234.50" in card_text
            assert "device_type = mobile" in card_text
            assert "Fix the mobile checkout" in card_text
            assert "abandoned-cart-recovery.yaml" in card_text
            # Notes and feelings from the owner's file; the emotion lane says it has no scores.
            assert "“Is shipping free?”" in text
            assert "feels anxious about delivery costs" in text
            assert "No survey scores yet" in text
            # The charts are drawn and visible.
            assert page.locator("svg.funnel rect").count() == 6
            assert page.locator("svg.sankey path").count() >= 4
            assert page.locator("svg.sankey").bounding_box()["height"] > 100  # type: ignore[index]
            assert "Visited the store" in (page.locator("svg.funnel").text_content() or "")
            # Unknown events are listed, not dropped.
            assert "Size Chart Opened" in page.locator("#unknown-events").inner_text()
        finally:
            browser.close()
    assert requests == [html_path.as_uri()]


@pytest.mark.slow
@needs_chromium
def test_png_and_pdf(journey_map: JourneyMap) -> None:
    html = render_html(journey_map)
    png = render_in_browser(html, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    pdf = render_in_browser(html, "pdf")
    assert pdf[:5] == b"%PDF-"
