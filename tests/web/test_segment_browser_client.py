"""Done when: the real Segment browser client (``@segment/analytics-next`` from the npm registry)
on a store's page sends page, track and identify calls to a running Wayline, and they land on
that customer's history.

The package is installed with npm into a cache folder (once per machine and version; nothing is
committed) and its UMD build is served with a test page from a local HTTP server — a different
origin from Wayline's, so the browser's CORS rules apply as on a real store. The client gets its
settings inline (``cdnSettings``) and every request the page makes is watched: none may leave
127.0.0.1. The page runs in the system's headless Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from functools import partial
from html import unescape
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from e2e_server import RunningServer, move_inbox, running_server, seed_home, wait_for

from wayline.config import Settings
from wayline.journeymap.render.browser import CHROMIUM_ARGS, find_chromium
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore

PACKAGE = "@segment/analytics-next"
VERSION = "1.84.3"
NPM_FLAGS = ("--no-audit", "--no-fund", "--ignore-scripts", "--no-save")
ASSETS = Path(__file__).parent / "assets"
CHROMIUM = find_chromium()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)"),
]


def _npm_cache() -> Path:
    root = os.environ.get("WAYLINE_TEST_NPM_CACHE") or Path.home() / ".cache" / "wayline-tests"
    return Path(root) / f"segment-analytics-next-{VERSION}"


@pytest.fixture(scope="session")
def analytics_next_umd() -> Path:
    """The package's browser bundle folder (``dist/umd``), installed from npm on first use."""
    folder = _npm_cache()
    umd = folder / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
    if (umd / "index.js").exists():
        return umd
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot fetch the Segment browser client")
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Installed beside the cache and renamed into place, so a run killed halfway (or two runs
    # at once) never leaves a half-installed package that looks complete.
    staging = Path(tempfile.mkdtemp(prefix="npm-", dir=folder.parent))
    result = subprocess.run(
        [npm, "install", "--prefix", str(staging), *NPM_FLAGS, f"{PACKAGE}@{VERSION}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"npm install {PACKAGE} failed:\n{result.stderr}"
    try:
        staging.rename(folder)
    except OSError:  # another run got there first
        shutil.rmtree(staging, ignore_errors=True)
    assert (umd / "index.js").exists(), f"no UMD build in {umd}"
    return umd


class _StorePage(SimpleHTTPRequestHandler):
    """The store's site: the test page at ``/``, the client's bundles where it looks for them."""

    def __init__(self, *args: Any, umd: Path, **kwargs: Any) -> None:
        self.umd = umd
        super().__init__(*args, directory=str(ASSETS), **kwargs)

    def translate_path(self, path: str) -> str:
        route = urlsplit(path).path
        if route == "/":
            return str(ASSETS / "segment_page.html")
        prefix = "/analytics-next/bundles/"
        if route.startswith(prefix):
            return str(self.umd / Path(route[len(prefix) :]).name)
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def store_site(analytics_next_umd: Path) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_StorePage, umd=analytics_next_umd))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(seed_home(tmp_path / "data", events=0)) as running:
        yield running


def _inbox_count(home: Path, workspace_id: str) -> int:
    with Database.open(Settings(home=home)) as db:
        return db.inbox_count(workspace_id)


def test_analytics_next_in_chromium_reaches_the_customers_history(
    server: RunningServer, store_site: str
) -> None:
    from playwright.sync_api import Route, sync_playwright

    seeded = server.seeded
    api_host = f"{urlsplit(server.url).netloc}/v1"
    query = urlencode({"writeKey": seeded.write_key, "apiHost": api_host, "userId": "ada-1"})
    requested: list[str] = []
    outside: list[str] = []
    tracking_calls: list[str] = []
    answers: list[str] = []

    def watch(route: Route) -> None:
        url = route.request.url
        requested.append(url)
        if urlsplit(url).hostname != "127.0.0.1":
            outside.append(url)
            route.abort()
            return
        if url.startswith(server.url):
            tracking_calls.append(urlsplit(url).path)
        route.continue_()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"error: {e}"))
            page.on(
                "response",
                lambda r: (
                    answers.append(f"{r.request.method} {r.url} → {r.status}")
                    if r.url.startswith(server.url)
                    else None
                ),
            )
            page.route("**/*", watch)
            page.goto(f"{store_site}/?{query}")
            ids = page.evaluate("window.done")
            # The client's promises settle when a call is queued for delivery, not delivered:
            # wait until the server has acknowledged all four.
            try:
                wait_for(lambda: _inbox_count(seeded.home, seeded.workspace_id) >= 4, timeout=20)
            except TimeoutError:
                pytest.fail(
                    f"Wayline did not store the calls; its answers: {answers}; console: "
                    f"{console}; requests: {requested}; page: {page.text_content('#status')}"
                )
            status = page.text_content("#status")
        finally:
            browser.close()

    assert outside == [], f"the page reached outside 127.0.0.1: {outside}"
    assert status == "sent", console
    assert ids["userId"] == "ada-1" and ids["anonymousId"]
    assert tracking_calls, f"nothing was sent to Wayline; requests: {requested}"
    assert _inbox_count(seeded.home, seeded.workspace_id) == 4

    assert move_inbox(seeded) == 4
    with EventStore(Settings(home=seeded.home).resolved_analytics_path, read_only=True) as store:
        rows = store.con.execute(
            """SELECT type, event, user_id, anonymous_id, person_id FROM events
               WHERE workspace_id = ? ORDER BY timestamp""",
            [seeded.workspace_id],
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("page", "$page"),
        ("track", "Product Viewed"),
        ("identify", "$identify"),
        ("track", "Product Added"),
    ], rows
    # The browsing before the identify is the same customer's: one person, one anonymous id.
    assert {r[3] for r in rows} == {ids["anonymousId"]}
    assert len({r[4] for r in rows}) == 1, rows
    # And the dashboard's API shows them on the customer's timeline, the anonymous browsing too.
    timeline = httpx.get(
        f"{server.url}/api/v1/customers/ada-1/timeline", headers=server.api_headers, timeout=30
    )
    assert timeline.status_code == 200, timeline.text
    events = [i["event"]["event"] for i in timeline.json()["items"] if i["kind"] == "event"]
    assert sorted(events) == sorted(["$page", "Product Viewed", "$identify", "Product Added"])


STORE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A store</title>
{snippet}
</head><body><h1>A store page</h1><p id="status">loading</p>
<script>
  window.done = (async () => {{
    await analytics.track("Product Viewed", {{product_id: "sku-7"}});
    await analytics.identify("bo-2", {{email: "bo@shop.example"}});
    document.getElementById("status").textContent = "sent";
    return (await analytics.user()).anonymousId();
  }})();
</script></body></html>"""


def test_the_data_page_snippet_pasted_into_a_store_page_tracks_it(
    server: RunningServer, tmp_path: Path
) -> None:
    """The two tags the Data page shows, pasted as they are into a page of another site: the
    client loads from Wayline itself (its vendored copy, no npm, no CDN) and sends there."""
    from playwright.sync_api import Route, sync_playwright

    seeded = server.seeded
    with httpx.Client(base_url=server.url, timeout=30) as dashboard:
        login = {"email": seeded.email, "password": seeded.password}
        assert dashboard.post("/login", data=login).status_code == 303
        html = dashboard.get("/data").text
    code = re.search(r'id="tracking-snippet"[^>]*><code>(.*?)</code></pre>', html, re.S)
    assert code is not None, "no snippet on the Data page"
    snippet = unescape(code.group(1))
    assert (
        seeded.write_key in snippet and f"{server.url}/analytics-next/bundles/index.js" in snippet
    )
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(STORE_PAGE.format(snippet=snippet), encoding="utf-8")
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(site))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    store_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    requested: list[str] = []

    def watch(route: Route) -> None:
        requested.append(route.request.url)
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            route.abort()
        else:
            route.continue_()

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.route("**/*", watch)
                page.goto(f"{store_url}/")
                anonymous_id = page.evaluate("window.done")
                wait_for(lambda: _inbox_count(seeded.home, seeded.workspace_id) >= 3, timeout=20)
            finally:
                browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()

    assert errors == []
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in requested), requested
    assert f"{server.url}/analytics-next/bundles/index.js" in requested
    assert move_inbox(seeded) == 3
    with EventStore(Settings(home=seeded.home).resolved_analytics_path, read_only=True) as store:
        rows = store.con.execute(
            "SELECT type, event, anonymous_id FROM events WHERE workspace_id = ? "
            "ORDER BY timestamp",
            [seeded.workspace_id],
        ).fetchall()
    # (The snippet's page view is not awaited: its timestamp may come after the track's.)
    assert sorted((t, e) for t, e, _ in rows) == [
        ("identify", "$identify"),
        ("page", "$page"),
        ("track", "Product Viewed"),
    ]
    assert {a for _, _, a in rows} == {anonymous_id}


def test_the_served_client_is_the_tested_version() -> None:
    from wayline.web import ANALYTICS_NEXT_DIR

    assert (ANALYTICS_NEXT_DIR / "VERSION").read_text().strip() == VERSION
    assert (ANALYTICS_NEXT_DIR / "index.js").stat().st_size > 50_000
