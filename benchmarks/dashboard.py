"""Benchmark: server time of the dashboard's analytics pages on a large sample store.

    .venv/bin/python benchmarks/dashboard.py                       # 1 M events
    .venv/bin/python benchmarks/dashboard.py --events 10000000     # the issue's 10 M store

The store is the sample-store simulator's, generated once per size and cached under
``benchmarks/data/`` (the same file as ``benchmarks/journey_map.py``'s). The app runs in this
process on a fresh data folder pointing at that store, with one logged-in dashboard session;
each request goes through the whole app (routing, session, cache, template) in-process, so the
time measured is the server's, without a network.

Per page (``/map``, ``/funnels``, ``/paths``, ``/retention`` with their default settings, and
``GET /api/v1/journey-map``) it reports

- **uncached** (the baseline): the page with the cache switched off — every request computes;
- **cold**: the first request of a new process with an empty cache (computes once, keeps it);
- **cold worker, persisted cache**: the first request of another new process that finds the
  result written to the data folder by the first;
- **warm**: the median of ``--runs`` further requests,

and the ratio warm / uncached. Target: every page under 300 ms warm on 10 M events. The
section ``dashboard`` of ``benchmarks/RESULTS.md`` is rewritten with the figures.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from journey_map import store
from results import run_sizes
from wayline.api import create_app
from wayline.config import Settings
from wayline.storage.accounts import Accounts
from wayline.storage.db import Database
from wayline.web.cache import ResultCache

PAGES = ("/map", "/funnels", "/paths", "/retention", "/api/v1/journey-map")
TARGET_MS = 300.0
PASSWORD = "benchmark password"


class Site:
    """The app on ``home``, reading the analytics store at ``events``, logged in."""

    def __init__(self, home: Path, events: Path, *, cache: ResultCache) -> None:
        self.settings = Settings(home=home, analytics_path=events)
        self.settings.ensure_home()
        self.db = Database.open(self.settings)
        workspace_id, _, _ = self.db.ensure_default_workspace()
        accounts = Accounts(self.db)
        if not accounts.list_api_keys(workspace_id):
            accounts.create_user(workspace_id, "bench@shop.example", PASSWORD)
            accounts.create_api_key(workspace_id, "benchmark")
        self.app = create_app(self.settings, database=self.db)
        self.app.state.analytics_cache = cache
        self.client = TestClient(self.app, follow_redirects=False)
        r = self.client.post("/login", data={"email": "bench@shop.example", "password": PASSWORD})
        assert r.status_code == 303, r.text

    def get_ms(self, path: str) -> float:
        t = time.perf_counter()
        r = self.client.get(path)
        ms = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        return ms

    def close(self) -> None:
        self.client.close()
        self.db.close()


def bench(events: int, runs: int) -> tuple[bool, str]:
    path = store(events)
    rows: list[tuple[str, float, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="wayline-dashboard-bench-") as tmp:
        home = Path(tmp) / "data"
        persist = home / "cache" / "analytics"
        uncached = Site(home, path, cache=ResultCache(ttl=0, background=False))
        first = Site(home, path, cache=ResultCache(persist_dir=persist))
        # Another worker: its own memory, the same data folder.
        second = Site(home, path, cache=ResultCache(persist_dir=persist))
        try:
            for page in PAGES:
                base = uncached.get_ms(page)
                cold = first.get_ms(page)
                persisted = second.get_ms(page)
                warm = statistics.median(first.get_ms(page) for _ in range(runs))
                rows.append((page, base, cold, persisted, warm))
                print(
                    f"  {page:22} uncached {base:8.0f} ms  cold {cold:8.0f} ms  "
                    f"cold worker {persisted:6.1f} ms  warm {warm:6.1f} ms  "
                    f"({warm / base:.4f}× uncached)"
                )
        finally:
            for site in (uncached, first, second):
                site.close()
    ok = all(warm < TARGET_MS and persisted < TARGET_MS for _, _, _, persisted, warm in rows)
    lines = [
        f"### {events:,} events ({path.name})",
        "",
        "| page | uncached (baseline) | cold | cold worker (persisted) | warm | warm / uncached |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for page, base, cold, persisted, warm in rows:
        lines.append(
            f"| `{page}` | {base:,.0f} ms | {cold:,.0f} ms | {persisted:,.1f} ms | "
            f"{warm:,.1f} ms | {warm / base:.4f}× |"
        )
    verdict = "met" if ok else "NOT met"
    lines += ["", f"Target: under {TARGET_MS:.0f} ms warm and from a cold worker: {verdict}."]
    print(f"  target < {TARGET_MS:.0f} ms: {verdict}")
    return ok, "\n".join(lines)


def main() -> None:
    head = (
        "## Dashboard pages (issue 7)\n"
        "Server time per request, in-process (`benchmarks/dashboard.py`): each page with its "
        "default settings. *Uncached* computes on every request (the baseline); *cold* is a "
        "new process's first request; *cold worker* is another new process finding the "
        "result persisted in the data folder; *warm* is the median of repeated requests."
    )
    run_sizes("dashboard", head, bench, description=__doc__.split("\n")[0], runs=7)


if __name__ == "__main__":
    main()
