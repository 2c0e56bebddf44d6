"""The dashboard: server-rendered pages (Jinja2) on the same FastAPI app as the APIs.

Everything a page needs ships in this package — templates in ``templates/``, CSS and the few
scripts (the journey builder's canvas, charts) in ``static/`` — so a user's machine needs no Node
toolchain. Pages live one module per area (``map``, ``journeys``…), each an ``APIRouter`` that
:func:`install` includes; they call the same core functions as the REST API (``wayline.api.rest``)
and render :mod:`wayline.web.render`'s layout. Log-in, sessions and CSRF are in
:mod:`wayline.web.auth`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from wayline.web import analytics_pages, auth, customers, data, journeys, map, settings
from wayline.web.render import error_page

STATIC_DIR = Path(__file__).parent / "static"
#: Segment's browser client (``@segment/analytics-next``, MIT), served for the Data page's
#: ``<script>`` snippet: a store pastes two tags and sends to Wayline without npm or a CDN.
#: Refreshed by ``scripts/vendor-analytics-next.sh``.
ANALYTICS_NEXT_DIR = STATIC_DIR / "vendor" / "analytics-next"
#: Where the client loads its chunks from: ``<cdnURL>/analytics-next/bundles/``.
ANALYTICS_NEXT_PATH = "/analytics-next/bundles"


def install(app: FastAPI) -> None:
    """Add the dashboard's routes, its static files and its log-in redirect to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(ANALYTICS_NEXT_PATH, StaticFiles(directory=ANALYTICS_NEXT_DIR), name="analytics-next")
    app.state.html_error_page = error_page
    auth.install(app)
    for module in (auth, journeys, map, analytics_pages, customers, data, settings):
        app.include_router(module.router)
