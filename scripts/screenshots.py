"""Screenshots of the dashboard for the README: ``python scripts/screenshots.py``.

Starts a real server on a fresh data folder seeded with the sample store (the helper the
end-to-end tests use, ``tests/web/e2e_server.py``), logs in, creates the abandoned-cart journey
from the map's suggestion, and saves PNGs of the journey map, the funnel and the journey builder
to ``docs/screenshots/`` — desktop width, and the map at phone width too. Needs Chromium
(``apt-get install chromium``) and the test extras (Playwright).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "web"))

from e2e_server import running_server, seed_home  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from wayline.journeymap.render.browser import CHROMIUM_ARGS, find_chromium  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
SOLUTION = "Abandoned-cart follow-up by WhatsApp or e-mail"


def main() -> None:
    chromium = find_chromium()
    if chromium is None:
        sys.exit("Chromium is needed: apt-get install chromium")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wayline-shots-") as tmp:
        seeded = seed_home(Path(tmp) / "data")
        with running_server(seeded) as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
            for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                context = browser.new_context(base_url=server.url, viewport=viewport)
                page = context.new_page()
                page.set_default_timeout(120_000)
                page.goto("/login")
                page.get_by_label("E-mail").fill(seeded.email)
                page.get_by_label("Password").fill(seeded.password)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url("**/map")
                page.screenshot(path=OUT / f"map-{name}.png")
                if name == "phone":
                    break
                page.goto("/funnels")
                page.screenshot(path=OUT / f"funnel-{name}.png")
                page.goto("/map")
                button = page.get_by_role("button", name=f"Create journey: {SOLUTION}").first
                button.click()
                page.wait_for_url("**/journeys/*")
                page.get_by_test_id("canvas").wait_for()
                page.screenshot(path=OUT / f"builder-{name}.png")
                context.close()
            browser.close()
    for png in sorted(OUT.glob("*.png")):
        sys.stdout.write(f"{png.relative_to(ROOT)}  {png.stat().st_size // 1024} KB\n")


if __name__ == "__main__":
    main()
