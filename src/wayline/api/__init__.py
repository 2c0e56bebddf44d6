"""Wayline's HTTP API: one FastAPI app, its routers added per capability.

:func:`create_app` builds the app: the tracking API (:mod:`wayline.api.tracking`, ``/v1/…``),
the REST API (:mod:`wayline.api.rest`, ``/api/v1/…``), what comes back from messages (opens,
clicks, unsubscribes, provider webhooks: :mod:`wayline.api.engagement`) and the dashboard
(:mod:`wayline.web`).
The operational store is opened when the app starts and closed when it stops; each
server process (uvicorn worker) opens its own. The mover that carries events on into analytics is
*not* run here: DuckDB allows one writer process, so ``wayline serve`` runs it once, in its parent
process.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from fastapi.responses import Response

from wayline import web
from wayline.api import engagement, rest
from wayline.api.errors import install_error_handlers
from wayline.api.tracking import LoseResponses, router, utcnow
from wayline.config import Settings
from wayline.storage.db import Database

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The Wayline API app.

    Args:
        settings: where the stores are; read from the environment when omitted.
        database: an open operational store to use (and leave open) instead of opening one.
        clock: where ``received_at`` comes from (injected in tests).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        app.state.db = database if database is not None else Database.open(settings)
        try:
            yield
        finally:
            if owned:
                app.state.db.close()

    app = FastAPI(
        title="Wayline",
        version="1",
        summary="Customer journey maps from a store's own data, and the journeys that act on them.",
        lifespan=lifespan,
    )
    if database is not None:
        # Usable at once, even by an ASGI client that does not run the lifespan (tests).
        app.state.db = database
    app.state.settings = settings
    app.state.clock = clock
    lose_every = os.environ.get("WAYLINE_TEST_LOSE_EVERY_NTH_RESPONSE")
    app.state.lose_responses = LoseResponses(int(lose_every)) if lose_every else None
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(rest.router)
    app.include_router(engagement.router)
    web.install(app)

    @app.get("/health", include_in_schema=False)
    async def health() -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    return app
