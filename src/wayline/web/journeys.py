"""Dashboard pages for journeys: the list (``/journeys``) and the visual builder
(``/journeys/{id}``).

The builder page embeds the journey (its document, status, problems and — once published —
its per-step stats) as JSON; ``static/builder.js`` draws it as a canvas and saves through the
REST API (``/api/v1/journeys/…``) with the session cookie and the page's CSRF token. Creating
and importing are plain forms, so they work before any script has loaded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from wayline.api.rest import journeys as api
from wayline.api.rest.deps import WorkspaceContext
from wayline.channels.templates import TemplateLibrary
from wayline.config import Settings
from wayline.errors import Conflict, InputError, NotFound
from wayline.journeys.entry import JourneyStatus
from wayline.storage.db import Database
from wayline.web.auth import Session, check_csrf
from wayline.web.render import page

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

#: What the builder's "add a step" menu offers, in the order store owners reach for them.
STEP_KINDS: list[tuple[str, str]] = [
    ("send:email", "Send e-mail"),
    ("send:whatsapp", "Send WhatsApp"),
    ("send:sms", "Send SMS"),
    ("delay", "Delay"),
    ("wait_until", "Wait until a time"),
    ("wait_for", "Wait for an event"),
    ("switch", "Branch (switch)"),
    ("split", "A/B split"),
    ("update_profile", "Update profile"),
    ("webhook", "Webhook"),
    ("exit", "Exit"),
]


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _ctx(request: Request, session: Session) -> WorkspaceContext:
    return WorkspaceContext(session.workspace_id, _db(request), request.app.state.settings)


def starter_document(journey_id: str, name: str, trigger_event: str) -> dict[str, Any]:
    """A new journey: its trigger, and one first step to build on."""
    return {
        "id": journey_id,
        "name": name or journey_id,
        "trigger": {"event": trigger_event},
        "steps": [{"id": "first_wait", "type": "delay", "duration": "1h"}],
    }


def _list_page(
    request: Request, session: Session, *, error: str | None = None, status_code: int = 200,
    form: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    items = api.list_journeys(_db(request), session.workspace_id)
    return page(
        request,
        "journeys.html",
        session,
        title="Journeys",
        journeys=items,
        error=error,
        form=form or {},
        status_code=status_code,
    )


@router.get("/journeys")
def journeys_page(request: Request, session: Session) -> Response:
    return _list_page(request, session)


@router.post("/journeys/new")
async def new_journey(
    request: Request,
    session: Session,
    journey_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    trigger_event: Annotated[str, Form()] = "",
) -> Response:
    await check_csrf(request, session)
    form = {"journey_id": journey_id, "name": name, "trigger_event": trigger_event}
    document = starter_document(journey_id.strip(), name.strip(), trigger_event.strip())
    try:
        api.save_draft(_ctx(request, session), document, create=True)
    except (InputError, Conflict) as exc:
        return _list_page(request, session, error=str(exc), status_code=400, form=form)
    return RedirectResponse(f"/journeys/{document['id']}", status_code=303)


@router.post("/journeys/import")
async def import_journey(
    request: Request,
    session: Session,
    yaml_text: Annotated[str, Form()] = "",
    file: UploadFile | None = None,
) -> Response:
    await check_csrf(request, session)
    text = yaml_text
    if file is not None and file.filename:
        raw = await file.read(api.MAX_DOCUMENT_BYTES + 1)
        if len(raw) > api.MAX_DOCUMENT_BYTES:
            return _list_page(request, session, error="the file is over 1 MB", status_code=400)
        text = raw.decode("utf-8", errors="replace")
    try:
        if not text.strip():
            raise InputError("paste a journey's YAML or choose a file", field="yaml_text")
        document = api.parse_document_text(text, yaml_text=True, source="the YAML")
        journey_id, _ = api.save_draft(_ctx(request, session), document)
    except (InputError, Conflict) as exc:
        return _list_page(request, session, error=str(exc), status_code=400)
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


def _template_names(settings: Settings) -> list[str]:
    try:
        return TemplateLibrary(Path(settings.home) / "templates").names()
    except Exception:  # the builder works without suggestions; log why there are none
        log.exception("message templates could not be listed")
        return []


def builder_data(ctx: WorkspaceContext, journey_id: str) -> dict[str, Any]:
    """Everything the canvas needs, as plain JSON."""
    stored = api.load(ctx.db, ctx.workspace_id, journey_id)
    journey = api.JourneyOut.of(stored)
    stats = None
    if stored.live is not None:
        stats = api.journey_stats(ctx, journey_id, None).model_dump(mode="json")
    return {
        "journey": journey.model_dump(mode="json"),
        "stats": stats,
        "api": f"/api/v1/journeys/{journey_id}",
        "templates": _template_names(ctx.settings),
        "step_kinds": [{"value": v, "label": label} for v, label in STEP_KINDS],
    }


def _embed(data: Any) -> str:
    # Inside <script type="application/json">, "</script>" in a value would end the element.
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@router.get("/journeys/{journey_id}")
def builder_page(request: Request, session: Session, journey_id: str) -> Response:
    ctx = _ctx(request, session)
    try:
        data = builder_data(ctx, journey_id)
    except NotFound:
        return page(
            request, "journeys_missing.html", session, title="No such journey",
            journey_id=journey_id, status_code=404,
        )  # fmt: skip
    journey = data["journey"]
    return page(
        request,
        "journeys_builder.html",
        session,
        title=journey["name"],
        journey=journey,
        archived=journey["status"] == JourneyStatus.ARCHIVED.value,
        data_json=_embed(data),
    )
