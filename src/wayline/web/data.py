"""Dashboard page for bringing data in (``/data``): upload an export file and watch it import;
copy the tracking snippet and write key into the store.

The upload is a plain multipart form; the import runs in the background
(:mod:`wayline.events.importers.jobs`). The page then shows the job's progress: a small script
(``static/data_import.js``) polls ``/api/v1/imports/{id}`` with the session cookie, and without
scripts the page reloads itself every two seconds until the job has finished.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from wayline.api.rest.deps import WorkspaceContext
from wayline.api.rest.imports import ImportJobOut, start_import
from wayline.api.rest.settings import write_keys
from wayline.errors import InputError, NotFound
from wayline.events.importers import FORMATS
from wayline.events.importers.jobs import UNFINISHED, ImportJobs
from wayline.web.auth import Session, check_csrf
from wayline.web.render import page

router = APIRouter(include_in_schema=False)

FORMAT_LABELS: dict[str, str] = {
    "auto": "Detect from the file",
    "csv": "CSV (one event per row)",
    "jsonl": "JSON lines (one event per line)",
    "parquet": "Parquet",
    "ga4": "Google Analytics 4 (BigQuery export)",
    "shopify": "Shopify orders export",
    "woocommerce": "WooCommerce orders export",
}


def _ctx(request: Request, session: Session) -> WorkspaceContext:
    return WorkspaceContext(session.workspace_id, request.app.state.db, request.app.state.settings)


def _render(
    request: Request,
    session: Session,
    *,
    job_id: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    ctx = _ctx(request, session)
    jobs = ImportJobs(ctx.db, ctx.settings)
    recent, _ = jobs.list(ctx.workspace_id, limit=10, offset=0)
    job = None
    if job_id:
        try:
            job = ImportJobOut.of(jobs.get(ctx.workspace_id, job_id))
        except NotFound:
            job = None
    keys = [k for k in write_keys(ctx.db, ctx.workspace_id) if k.revoked_at is None]
    base = str(request.base_url).rstrip("/")
    host = base.split("://", 1)[1]
    return page(
        request,
        "data_index.html",
        session,
        title="Data",
        job=job,
        unfinished=UNFINISHED,
        recent=[ImportJobOut.of(j) for j in recent],
        formats=[(f, FORMAT_LABELS.get(f, f)) for f in FORMATS],
        error=error,
        write_key=keys[0].key if keys else None,
        api_host=f"{host}/v1",
        protocol=base.split("://", 1)[0],
        base_url=base,
        status_code=status_code,
    )


@router.get("/data")
def data_page(
    request: Request,
    session: Session,
    job: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    return _render(request, session, job_id=job)


@router.post("/data/imports")
async def upload_form(request: Request, session: Session) -> Response:
    await check_csrf(request, session)
    form = await request.form()
    upload = form.get("file")
    fmt = form.get("format")
    mapping = form.get("mapping")
    event = form.get("event")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InputError("choose a file to upload", field="file")
        job = start_import(
            _ctx(request, session),
            upload,
            fmt=fmt if isinstance(fmt, str) else "auto",
            mapping=mapping if isinstance(mapping, str) else None,
            event_name=event if isinstance(event, str) else None,
        )
    except InputError as exc:
        return _render(request, session, error=str(exc), status_code=400)
    return RedirectResponse(f"/data?job={job.id}", status_code=303)
