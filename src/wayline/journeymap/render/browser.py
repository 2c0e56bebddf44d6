"""PNG and PDF of the HTML map, printed by a headless Chromium driven by Playwright.

Wayline uses the system's Chromium (``/usr/bin/chromium``, or ``WAYLINE_CHROMIUM``) and never
downloads a browser. The page is loaded with every network request refused — the map is
self-contained, so nothing is lost, and a map can never call out while being printed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final, Literal

from wayline.errors import ConfigError

CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
DEFAULT_CHROMIUM: Final = "/usr/bin/chromium"


def find_chromium() -> str | None:
    """The Chromium to use: ``WAYLINE_CHROMIUM``, ``/usr/bin/chromium``, or one on the PATH."""
    explicit = os.environ.get("WAYLINE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    if Path(DEFAULT_CHROMIUM).exists():
        return DEFAULT_CHROMIUM
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render_in_browser(html: str, kind: Literal["png", "pdf"], *, width: int = 1400) -> bytes:
    """The page as a full-page PNG screenshot or an A4-landscape PDF."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # an optional extra
        raise ConfigError(
            "PNG and PDF need Playwright: pip install playwright (no browser download needed)"
        ) from exc
    chromium = find_chromium()
    if chromium is None:
        raise ConfigError(
            "PNG and PDF need Chromium: install it (apt-get install chromium) or set "
            "WAYLINE_CHROMIUM to its path"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            # The map is self-contained; refuse anything that would go to a network.
            page.route("**/*", lambda route: route.abort())
            page.set_content(html, wait_until="load")
            if kind == "png":
                return page.screenshot(full_page=True, type="png")
            page.emulate_media(media="print")
            return page.pdf(format="A4", landscape=True, print_background=True)
        finally:
            browser.close()
