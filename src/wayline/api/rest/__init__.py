"""The REST API, version 1: ``/api/v1/…``, JSON, described by the app's OpenAPI document.

One module per resource, each an ``APIRouter`` included here. Every route depends on
:data:`wayline.api.rest.deps.Workspace` (the caller's workspace from its secret API key);
lists are paginated with :data:`~wayline.api.rest.deps.Paging` and answer a
:class:`~wayline.api.rest.deps.Page`; errors are Wayline's JSON errors (``wayline.api.errors``).
"""

from __future__ import annotations

from fastapi import APIRouter

from wayline.api.rest import (
    analytics,
    customers,
    imports,
    journey_map,
    journeys,
    keys,
    messages,
    settings,
    templates,
)

router = APIRouter(prefix="/api/v1")
for module in (
    keys,
    journeys,
    analytics,
    journey_map,
    customers,
    imports,
    messages,
    templates,
    settings,
):
    router.include_router(module.router)
