"""A real Wayline server for end-to-end tests: the app under uvicorn in a subprocess, free port.

The browser tests (Playwright, the Segment browser client) and ``scripts/screenshots.py`` need
the whole product as a user runs it — uvicorn workers, the mover carrying events into DuckDB,
the journey runtime — not an in-process ASGI app. :func:`seed_home` prepares a fresh data folder
(the sample store's events in DuckDB, an account for the dashboard, a secret API key) *before*
the server starts, because DuckDB allows one writer process and the server's mover is it.
:func:`running_server` then starts the server on it and waits for ``/health``;
:func:`move_inbox` carries tracked events into analytics when a test wants them there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx

from wayline.cli.demo import demo_start
from wayline.config import Settings
from wayline.events.simulator import ALL_PROBLEMS, StoreConfig, load_store, simulate_store
from wayline.storage.accounts import Accounts
from wayline.storage.analytics_access import is_lock_error
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore
from wayline.storage.mover import Mover

EMAIL = "owner@shop.example"
PASSWORD = "correct horse battery"
#: Small enough to seed in seconds, large enough for the map's detectors to find the injected
#: problems (the checkout problems are what suggest the abandoned-cart journey).
SEED_EVENTS = 40_000
SEED_DAYS = 90


@dataclass(frozen=True)
class SeededHome:
    """A data folder ready to serve, and what a test needs to act in it."""

    home: Path
    workspace_id: str
    write_key: str
    api_key: str
    email: str = EMAIL
    password: str = PASSWORD


@dataclass(frozen=True)
class RunningServer:
    url: str
    seeded: SeededHome
    proc: subprocess.Popen[bytes]

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seeded.api_key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_home(
    home: Path,
    *,
    events: int = SEED_EVENTS,
    seed: int = 7,
    with_user: bool = True,
    now: datetime | None = None,
) -> SeededHome:
    """A fresh data folder with the sample store (its period ending today, as ``wayline demo``
    does, so the dashboard's default "last N days" shows it), an account and an API key.

    ``events=0`` leaves the analytics store empty (a store that has not sent anything yet);
    ``with_user=False`` leaves the first-run ``/setup`` page to the test.
    """
    settings = Settings(home=home)
    settings.ensure_home()
    with Database.open(settings) as db:
        workspace_id, write_key, _ = db.ensure_default_workspace()
        accounts = Accounts(db)
        _, api_key = accounts.create_api_key(workspace_id, "end-to-end tests")
        if with_user:
            accounts.create_user(workspace_id, EMAIL, PASSWORD)
    if events:
        config = StoreConfig.for_events(
            events,
            seed=seed,
            start=demo_start(now or datetime.now(UTC), SEED_DAYS),
            days=SEED_DAYS,
            problems=ALL_PROBLEMS,
            workspace_id=workspace_id,
        )
        with EventStore(settings.resolved_analytics_path) as store:
            store.con.execute("SET enable_progress_bar = false")
            load_store(store, simulate_store(config))
    return SeededHome(home, workspace_id, write_key, api_key)


@contextmanager
def running_server(
    seeded: SeededHome,
    *,
    command: str = "app",
    workers: int = 1,
    startup_timeout: float = 60.0,
) -> Iterator[RunningServer]:
    """The app on ``seeded.home`` and a free port, stopped (SIGTERM, then kill) afterwards.

    ``command="app"`` runs the app ``wayline serve`` runs in its workers (``uvicorn
    wayline.api:create_app --factory``) and nothing else: events wait in the inbox until the test
    calls :func:`move_inbox`, so a test decides when analytics change. ``command="serve"`` runs
    ``wayline serve`` itself, mover and journey runtime included.
    The server's output goes to ``serve.log`` in the data folder and is shown if it fails to start.
    """
    port = free_port()
    env = {
        **os.environ,
        "WAYLINE_HOME": str(seeded.home),
        # Tests wait on the mover: a short interval keeps them fast.
        "WAYLINE_MOVE_INTERVAL_SECONDS": "0.2",
    }
    for name in ("WAYLINE_DATABASE_URL", "WAYLINE_ANALYTICS_PATH"):
        env.pop(name, None)
    if command == "serve":
        argv = ["-m", "wayline", "serve", "--port", str(port), "--workers", str(workers)]
    elif command == "app":
        argv = ["-m", "uvicorn", "wayline.api:create_app", "--factory", "--port", str(port)]
        argv += ["--workers", str(workers), "--log-level", "warning"]
    else:
        raise ValueError(f"command must be 'app' or 'serve', not {command!r}")
    log_path = seeded.home / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *argv], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server did not start:\n{log_path.read_text(errors='replace')}"
                    )
                time.sleep(0.1)
            yield RunningServer(url, seeded, proc)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def move_inbox(seeded: SeededHome, *, timeout: float = 30.0) -> int:
    """Move every acknowledged event from the inbox into DuckDB, as the server's mover does,
    holding the DuckDB file only while moving (the server's workers read it between requests).
    Returns how many messages were moved."""
    settings = Settings(home=seeded.home)
    deadline = time.monotonic() + timeout
    while True:
        try:
            store = EventStore(settings.resolved_analytics_path)
            break
        except duckdb.Error as exc:
            if not is_lock_error(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    moved = 0
    try:
        with Database.open(settings) as db:
            mover = Mover(db, store)
            while n := mover.move_batch():
                moved += n
    finally:
        store.close()
    return moved


def wait_for(check: object, *, timeout: float = 20.0, interval: float = 0.2) -> object:
    """Call ``check()`` until it returns something truthy (returned) or ``timeout`` passes."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {check!r}")
        time.sleep(interval)


if __name__ == "__main__":
    # Handy by hand: a seeded server to look at (Ctrl-C stops it).
    folder = Path(tempfile.mkdtemp(prefix="wayline-e2e-")) / "data"
    home = seed_home(folder)
    with running_server(home) as server:
        print(f"{server.url}  log in as {home.email} / {home.password}  (data in {folder})")
        with suppress(KeyboardInterrupt):
            server.proc.wait()


@contextmanager
def chromium_tab(server: RunningServer, *, timeout_ms: float = 30_000) -> Iterator[object]:
    """A tab of the system's headless Chromium on ``server`` (a desktop-sized window); fails
    the test afterwards if a page's script threw."""
    from playwright.sync_api import sync_playwright

    from wayline.journeymap.render.browser import CHROMIUM_ARGS, find_chromium

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
        try:
            tab = browser.new_page(base_url=server.url, viewport={"width": 1280, "height": 900})
            tab.set_default_timeout(timeout_ms)
            errors: list[str] = []
            tab.on("pageerror", lambda e: errors.append(str(e)))
            yield tab
            assert errors == [], f"script errors on the pages: {errors}"
        finally:
            browser.close()
