"""An import cut off by a stop is reported failed on the next start, never left 'running'."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from wayline.config import Settings
from wayline.events.importers.jobs import ImportJobs
from wayline.storage.db import Database
from wayline.storage.workspace_models import ImportJobRow

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def test_unfinished_jobs_are_marked_failed_and_finished_ones_kept(home: Path) -> None:
    settings = Settings(home=home)
    with Database.open(settings) as db:
        db.ensure_default_workspace()
        with db.write() as conn:
            for job_id, status in (("j1", "running"), ("j2", "queued"), ("j3", "done")):
                conn.execute(
                    insert(ImportJobRow).values(
                        id=job_id, workspace_id="default", filename="x.csv", format="csv",
                        status=status, created_at=NOW,
                    )
                )  # fmt: skip
        assert ImportJobs(db, settings).abandon_unfinished() == 2
        with db.read() as conn:
            rows = dict(conn.execute(select(ImportJobRow.id, ImportJobRow.status)).all())
            error = conn.scalar(select(ImportJobRow.error).where(ImportJobRow.id == "j1"))
    assert rows == {"j1": "failed", "j2": "failed", "j3": "done"}
    assert "upload the file again" in (error or "")
