"""``/api/v1/imports``: upload an export file, imported in the background, whole or not at all.

The work is :mod:`wayline.events.importers.jobs` (the same importer as ``wayline import``); this
module takes the multipart upload and answers the job's progress.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile as AnyUpload

from wayline.api.rest.deps import Page, Paging, Workspace, WorkspaceContext
from wayline.errors import InputError
from wayline.events.importers import FORMATS
from wayline.events.importers.jobs import ImportJob, ImportJobs, ImportOptions

router = APIRouter(prefix="/imports", tags=["Imports"])


class ImportJobOut(BaseModel):
    id: str
    filename: str
    format: str
    status: str = Field(
        description="queued, waiting (for the analytics store), running, done, failed"
    )
    stage: str | None
    bytes_total: int
    bytes_done: int
    percent: float
    rows_done: int
    events_stored: int
    error: str | None = Field(description="Why it failed (file, row, column); nothing was stored.")
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: ImportJob) -> ImportJobOut:
        return cls(
            id=job.id,
            filename=job.filename,
            format=job.format,
            status=job.status,
            stage=job.stage,
            bytes_total=job.bytes_total,
            bytes_done=job.bytes_done,
            percent=job.percent,
            rows_done=job.rows_done,
            events_stored=job.events_stored,
            error=job.error,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


def parse_mapping(text: str | None) -> dict[str, str]:
    """A column mapping from a form field: a JSON object, or ``field=column`` lines/commas."""
    if text is None or not text.strip():
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not a JSON object: {exc}", field="mapping") from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in value.items()
        ):
            raise InputError("expected an object of field → column names", field="mapping")
        return dict(value)
    mapping: dict[str, str] = {}
    for entry in text.replace(",", "\n").splitlines():
        if not entry.strip():
            continue
        target, sep, column = entry.partition("=")
        if not sep or not target.strip() or not column.strip():
            raise InputError(f"expected FIELD=COLUMN, got {entry.strip()!r}", field="mapping")
        mapping[target.strip()] = column.strip()
    return mapping


def start_import(
    ctx: WorkspaceContext,
    upload: AnyUpload,
    *,
    fmt: str,
    mapping: str | None,
    event_name: str | None,
) -> ImportJob:
    """Save the upload, record the job and start it (shared by the REST API and the dashboard)."""
    if not upload.filename:
        raise InputError("choose a file to upload", field="file")
    options = ImportOptions(
        format=fmt.strip().lower() or "auto",
        mapping=parse_mapping(mapping),
        event_name=(event_name or "").strip() or None,
    )
    jobs = ImportJobs(ctx.db, ctx.settings)
    job = jobs.create(ctx.workspace_id, upload.filename, upload.file, options)
    jobs.start(ctx.workspace_id, job.id, options)
    return job


@router.post("", status_code=202, response_model=ImportJobOut)
def create_import(
    ctx: Workspace,
    file: Annotated[UploadFile, File(description="The export file.")],
    format: Annotated[
        str, Form(description="One of: " + ", ".join(FORMATS) + " (auto: from the file).")
    ] = "auto",
    mapping: Annotated[
        str | None,
        Form(description='Generic files: {"user_id": "email", …} or user_id=email lines.'),
    ] = None,
    event: Annotated[
        str | None, Form(description="Event name of every row (file without an event column).")
    ] = None,
) -> ImportJobOut:
    """Upload a file; it is imported in the background (poll ``GET /imports/{id}``)."""
    return ImportJobOut.of(start_import(ctx, file, fmt=format, mapping=mapping, event_name=event))


@router.get("", response_model=Page[ImportJobOut])
def list_imports(ctx: Workspace, paging: Paging) -> Page[ImportJobOut]:
    jobs, total = ImportJobs(ctx.db, ctx.settings).list(
        ctx.workspace_id, limit=paging.limit, offset=paging.offset
    )
    return Page[ImportJobOut].of([ImportJobOut.of(j) for j in jobs], total, paging)


@router.get("/{job_id}", response_model=ImportJobOut)
def get_import(ctx: Workspace, job_id: str) -> ImportJobOut:
    return ImportJobOut.of(ImportJobs(ctx.db, ctx.settings).get(ctx.workspace_id, job_id))
