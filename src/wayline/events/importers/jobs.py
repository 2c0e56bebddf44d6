"""Import jobs: a file uploaded through the REST API or the dashboard, imported in the background.

The upload is saved under ``<home>/imports/<workspace_id>/<job id>/`` and an ``import_jobs`` row
records it (``queued``). A background thread of the server process then runs
:func:`wayline.events.importers.import_file` on it — exactly what ``wayline import`` does — and
keeps the row current: the stage, how many bytes DuckDB has read, and at the end the rows read
and events stored, or the importer's error (naming row and column) with nothing stored.

DuckDB allows one writer process per file. When another process holds the analytics store
(``wayline serve``'s mover, a CLI import), the job shows ``waiting`` and retries with backoff.
Within one process, imports run one at a time: two writers on one DuckDB file in one process
would only contend inside DuckDB.

A job whose process stopped before it finished stays ``queued``/``running``/``waiting``;
:meth:`ImportJobs.abandon_unfinished` marks those failed when a server starts.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, insert, select, update

from wayline.config import Settings
from wayline.errors import InputError, NotFound, WaylineError
from wayline.events.importers import FORMATS, import_file
from wayline.storage.analytics_access import open_when_free
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore
from wayline.storage.workspace_models import ImportJobRow

log = logging.getLogger(__name__)

GENERIC_FORMATS = ("csv", "jsonl", "parquet")
UNFINISHED = ("queued", "waiting", "running")
#: Past any real list; keeps a huge requested offset within SQL's 64-bit integers.
MAX_OFFSET = 2**53
#: Progress callbacks come every 0.1 s from DuckDB's poller; the job row needs far fewer writes.
_PROGRESS_EVERY_SECONDS = 0.5
_MAX_LOCK_WAIT_SECONDS = 600.0
# One import at a time per process (see the module docstring).
_RUN_LOCK = threading.Lock()


@dataclass(frozen=True)
class ImportJob:
    id: str
    filename: str
    format: str
    status: str
    stage: str | None
    bytes_total: int
    bytes_done: int
    rows_done: int
    events_stored: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def percent(self) -> float:
        if self.status == "done":
            return 100.0
        if not self.bytes_total:
            return 0.0
        return round(min(100.0, 100.0 * self.bytes_done / self.bytes_total), 1)

    @classmethod
    def of(cls, row: Any) -> ImportJob:
        return cls(
            id=row.id,
            filename=row.filename,
            format=row.format,
            status=row.status,
            stage=row.stage,
            bytes_total=row.bytes_total,
            bytes_done=row.bytes_done,
            rows_done=row.rows_done,
            events_stored=row.events_stored,
            error=row.error,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )


@dataclass(frozen=True)
class ImportOptions:
    format: str = "auto"
    mapping: Mapping[str, str] | None = None
    event_name: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def safe_filename(name: str) -> str:
    """The upload's base name with anything but letters, digits, ``.-_`` replaced (no paths)."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return cleaned[-200:]


def check_options(options: ImportOptions) -> None:
    """Refuse options the importer would refuse, before anything is saved."""
    if options.format not in FORMATS:
        raise InputError(
            f"unknown format {options.format!r}; expected one of {', '.join(FORMATS)}",
            field="format",
        )
    if options.mapping and options.format not in (*GENERIC_FORMATS, "auto"):
        raise InputError(
            f"a column mapping applies to generic csv/jsonl/parquet files, not to {options.format}",
            field="mapping",
        )


class ImportJobs:
    """The import jobs of one operational store, and the thread that runs them."""

    def __init__(
        self, db: Database, settings: Settings, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    def folder(self, workspace_id: str, job_id: str) -> Path:
        return Path(self.settings.home) / "imports" / workspace_id / job_id

    def create(
        self,
        workspace_id: str,
        filename: str,
        data: BinaryIO,
        options: ImportOptions,
    ) -> ImportJob:
        """Save the upload and record a queued job (call :meth:`start` to run it)."""
        check_options(options)
        name = safe_filename(filename)
        job_id = secrets.token_hex(8)
        folder = self.folder(workspace_id, job_id)
        folder.mkdir(parents=True)
        path = folder / name
        try:
            with path.open("wb") as out:
                shutil.copyfileobj(data, out, length=1 << 20)
            size = path.stat().st_size
            if size == 0:
                raise InputError("the uploaded file is empty", source=name, field="file")
            with self.db.write() as conn:
                conn.execute(
                    insert(ImportJobRow).values(
                        id=job_id,
                        workspace_id=workspace_id,
                        filename=name,
                        format=options.format,
                        status="queued",
                        bytes_total=size,
                        bytes_done=0,
                        rows_done=0,
                        events_stored=0,
                        created_at=self.clock(),
                    )
                )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self.get(workspace_id, job_id)

    def get(self, workspace_id: str, job_id: str) -> ImportJob:
        with self.db.read() as conn:
            row = conn.execute(
                select(ImportJobRow).where(
                    ImportJobRow.workspace_id == workspace_id, ImportJobRow.id == job_id
                )
            ).first()
        if row is None:
            raise NotFound(f"no import job '{job_id}'")
        return ImportJob.of(row)

    def list(self, workspace_id: str, *, limit: int, offset: int) -> tuple[list[ImportJob], int]:
        """The workspace's jobs, newest first, and how many there are."""
        offset = min(offset, MAX_OFFSET)  # SQL engines refuse offsets past 64 bits
        with self.db.read() as conn:
            total = conn.scalar(
                select(func.count())
                .select_from(ImportJobRow)
                .where(ImportJobRow.workspace_id == workspace_id)
            )
            rows = conn.execute(
                select(ImportJobRow)
                .where(ImportJobRow.workspace_id == workspace_id)
                .order_by(ImportJobRow.created_at.desc(), ImportJobRow.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [ImportJob.of(r) for r in rows], int(total or 0)

    def abandon_unfinished(self) -> int:
        """Mark failed the jobs left unfinished by a stopped server; how many there were."""
        with self.db.write() as conn:
            done = conn.execute(
                update(ImportJobRow)
                .where(ImportJobRow.status.in_(UNFINISHED))
                .values(
                    status="failed",
                    error="the server stopped before this import finished; nothing was stored, "
                    "upload the file again",
                    finished_at=self.clock(),
                )
            )
        return int(done.rowcount or 0)

    def _set(self, workspace_id: str, job_id: str, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(ImportJobRow)
                .where(ImportJobRow.workspace_id == workspace_id, ImportJobRow.id == job_id)
                .values(**values)
            )

    def start(self, workspace_id: str, job_id: str, options: ImportOptions) -> threading.Thread:
        """Run the job in a background thread of this process."""
        thread = threading.Thread(
            target=self.run,
            args=(workspace_id, job_id, options),
            name=f"import-{job_id}",
            daemon=True,
        )
        thread.start()
        return thread

    def run(self, workspace_id: str, job_id: str, options: ImportOptions) -> None:
        """Import the job's file now (in the calling thread), recording progress and outcome."""
        job = self.get(workspace_id, job_id)
        path = self.folder(workspace_id, job_id) / job.filename
        try:
            with _RUN_LOCK:
                self._import(workspace_id, job, path, options)
        except WaylineError as exc:
            self._set(
                workspace_id,
                job_id,
                status="failed",
                stage=None,
                error=str(exc),
                finished_at=self.clock(),
            )
        except Exception as exc:
            log.exception("import job %s failed", job_id)
            self._set(
                workspace_id,
                job_id,
                status="failed",
                stage=None,
                error=f"internal error: {type(exc).__name__}; nothing was stored",
                finished_at=self.clock(),
            )

    def _open_for_writing(self, workspace_id: str, job_id: str) -> EventStore:
        self.settings.ensure_home()
        return open_when_free(
            self.settings.resolved_analytics_path,
            read_only=False,
            timeout=_MAX_LOCK_WAIT_SECONDS,
            first_delay=0.05,
            max_delay=2.0,
            on_wait=lambda: self._set(
                workspace_id, job_id, status="waiting", stage="waiting for the store"
            ),
        )

    def _import(
        self, workspace_id: str, job: ImportJob, path: Path, options: ImportOptions
    ) -> None:
        store = self._open_for_writing(workspace_id, job.id)
        try:
            self._set(workspace_id, job.id, status="running", stage="starting")
            last_write = 0.0
            last_stage: str | None = None

            def progress(stage: str, pct: float | None) -> None:
                nonlocal last_write, last_stage
                values: dict[str, Any] = {"stage": stage}
                if not stage.startswith("reading"):
                    values["bytes_done"] = job.bytes_total  # past reading, the file was read
                elif pct is not None:
                    values["bytes_done"] = int(job.bytes_total * min(pct, 100.0) / 100.0)
                now = time.monotonic()
                if stage == last_stage and now - last_write < _PROGRESS_EVERY_SECONDS:
                    return
                last_stage, last_write = stage, now
                self._set(workspace_id, job.id, **values)

            result = import_file(
                store,
                path,
                now=self.clock(),
                format=options.format,
                workspace_id=workspace_id,
                mapping=options.mapping,
                event_name=options.event_name,
                progress=progress,
            )
        finally:
            store.close()
        self._set(
            workspace_id,
            job.id,
            status="done",
            stage=None,
            format=result.format,
            bytes_done=job.bytes_total,
            rows_done=result.rows_read,
            events_stored=result.events_loaded,
            finished_at=self.clock(),
        )
