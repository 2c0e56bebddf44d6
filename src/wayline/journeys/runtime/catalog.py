"""Journeys and their versions in the operational store: drafts, publishing, pausing, stats.

A journey's life::

    save_draft ──► draft ──publish──► live (version n) ──pause──► paused ──publish──► live …
                     ▲                    │                                   │
                     └─── save_draft ─────┘ (a new draft; live stays on n)    └──► archived

- **publish** freezes the current document as version ``n+1`` (immutable: a row in
  ``journey_versions`` that is never updated) and makes it the one new customers enter.
  Publishing a document equal to the newest version (same :func:`fingerprint`) makes no new
  version: it only sets the journey live again (how a paused journey resumes).
- Customers already inside stay on the version they entered: an instance names its version,
  and the runtime loads exactly that one.
- **pause** stops new entries; customers inside carry on to the end of their path.
- **archive** stops new entries for good; customers inside leave at their next step (recorded
  as ``exited``, outcome ``archived``) and their pending messages are not sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, insert, select, update

from wayline.errors import InputError, NotFound
from wayline.journeys.definition import fingerprint, parse_journey
from wayline.journeys.engine import RecordKind, StepRecord
from wayline.journeys.entry import JourneyStatus
from wayline.journeys.model import Journey, publish
from wayline.journeys.stats import JourneyStats, compute_stats
from wayline.storage.db import Database
from wayline.storage.journey_models import (
    InstanceRow,
    JourneyRow,
    JourneyVersionRow,
    StepRecordRow,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def read_document(path: Path | str) -> dict[str, Any]:
    """A journey file (``.yaml``/``.yml``/``.json``) as a document (validated on publish)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read the journey file: {exc.strerror}", source=str(path)
        ) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = path.suffix.lstrip(".").upper()
        raise InputError(f"not valid {kind}: {exc}", source=path.name) from None
    if not isinstance(data, dict):
        raise InputError("a journey is a mapping with id, name, trigger, steps", source=path.name)
    # Stored as JSON: dates and times YAML turned into objects become their ISO text, which the
    # definition parser reads back the same.
    loaded: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return loaded


@dataclass(frozen=True)
class JourneySummary:
    journey_id: str
    name: str
    status: JourneyStatus
    live_version: int | None
    versions: int
    has_draft: bool
    active: int
    """Customers inside now (active instances, any version)."""
    entered: int
    updated_at: datetime


class JourneyCatalog:
    """The journeys of every workspace. Thread-safe; versions are cached (they never change)."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = _utcnow,
        live_cache_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self._versions: dict[tuple[str, str, int], Journey] = {}
        self._live: dict[str, tuple[tuple[Journey, ...], float]] = {}
        self._status: dict[tuple[str, str], tuple[JourneyStatus, float]] = {}
        self._live_cache_seconds = live_cache_seconds
        self._lock = threading.Lock()

    # -- authoring ------------------------------------------------------------------------------

    def save_draft(self, workspace_id: str, document: Mapping[str, Any], *, source: str) -> str:
        """Validate ``document`` and keep it as the journey's draft; returns the journey id."""
        journey = parse_journey(document, source=source)
        now = self.clock()
        text = json.dumps(document, sort_keys=True, default=str)
        with self.db.write() as conn:
            row = conn.execute(
                select(JourneyRow.status).where(
                    JourneyRow.workspace_id == workspace_id,
                    JourneyRow.journey_id == journey.id,
                )
            ).first()
            if row is None:
                conn.execute(
                    insert(JourneyRow).values(
                        workspace_id=workspace_id, journey_id=journey.id, name=journey.name,
                        status=JourneyStatus.DRAFT.value, draft=text,
                        draft_fingerprint=fingerprint(document), live_version=None,
                        created_at=now, updated_at=now,
                    )
                )  # fmt: skip
            else:
                if row.status == JourneyStatus.ARCHIVED.value:
                    raise InputError(f"journey {journey.id!r} is archived", field="id")
                conn.execute(
                    update(JourneyRow)
                    .where(
                        JourneyRow.workspace_id == workspace_id,
                        JourneyRow.journey_id == journey.id,
                    )
                    .values(draft=text, draft_fingerprint=fingerprint(document), updated_at=now)
                )
        return journey.id

    def publish(
        self, workspace_id: str, document: Mapping[str, Any] | None = None, *,
        journey_id: str | None = None, source: str = "<journey>",
    ) -> tuple[str, int, bool]:  # fmt: skip
        """Publish ``document`` (or the stored draft of ``journey_id``) and set the journey live.

        Returns ``(journey id, live version, created)``; ``created`` is false when the document
        equals the newest version (nothing new was frozen, the journey is only set live).
        """
        now = self.clock()
        with self.db.write() as conn:
            if document is None:
                if journey_id is None:
                    raise InputError("publish needs a journey file or a journey id")
                draft = conn.scalar(
                    select(JourneyRow.draft).where(
                        JourneyRow.workspace_id == workspace_id,
                        JourneyRow.journey_id == journey_id,
                    )
                )
                if draft is None:
                    latest = self._latest_definition(conn, workspace_id, journey_id)
                    if latest is None:
                        raise NotFound(f"no journey {journey_id!r} in workspace {workspace_id}")
                    draft = latest
                document = json.loads(draft)
            assert document is not None
            journey = parse_journey(document, source=source)
            if journey_id is not None and journey.id != journey_id:
                raise InputError(
                    f"the file is journey {journey.id!r}, not {journey_id!r}", field="id"
                )
            fp = fingerprint(document)
            row = conn.execute(
                select(JourneyRow.status, JourneyRow.live_version).where(
                    JourneyRow.workspace_id == workspace_id,
                    JourneyRow.journey_id == journey.id,
                )
            ).first()
            if row is not None and row.status == JourneyStatus.ARCHIVED.value:
                raise InputError(f"journey {journey.id!r} is archived", field="id")
            newest = conn.execute(
                select(JourneyVersionRow.version, JourneyVersionRow.fingerprint)
                .where(
                    JourneyVersionRow.workspace_id == workspace_id,
                    JourneyVersionRow.journey_id == journey.id,
                )
                .order_by(JourneyVersionRow.version.desc())
                .limit(1)
            ).first()
            created = newest is None or newest.fingerprint != fp
            previous = 0 if newest is None else newest.version
            version = previous + 1 if created else previous
            if created:
                conn.execute(
                    insert(JourneyVersionRow).values(
                        workspace_id=workspace_id, journey_id=journey.id, version=version,
                        definition=json.dumps(document, sort_keys=True, default=str),
                        fingerprint=fp, published_at=now,
                    )
                )  # fmt: skip
            values = {
                "name": journey.name,
                "status": JourneyStatus.LIVE.value,
                "live_version": version,
                "draft": None,
                "draft_fingerprint": None,
                "updated_at": now,
            }
            if row is None:
                conn.execute(
                    insert(JourneyRow).values(
                        workspace_id=workspace_id, journey_id=journey.id, created_at=now, **values
                    )
                )
            else:
                conn.execute(
                    update(JourneyRow)
                    .where(
                        JourneyRow.workspace_id == workspace_id,
                        JourneyRow.journey_id == journey.id,
                    )
                    .values(**values)
                )
        self.forget(workspace_id)
        return journey.id, version, created

    def set_status(self, workspace_id: str, journey_id: str, status: JourneyStatus) -> None:
        """Pause or archive a journey (publish sets it live)."""
        if status not in (JourneyStatus.PAUSED, JourneyStatus.ARCHIVED):
            raise ValueError("set_status pauses or archives; publish sets a journey live")
        with self.db.write() as conn:
            current = conn.scalar(
                select(JourneyRow.status).where(
                    JourneyRow.workspace_id == workspace_id, JourneyRow.journey_id == journey_id
                )
            )
            if current is None:
                raise NotFound(f"no journey {journey_id!r} in workspace {workspace_id}")
            if current == JourneyStatus.ARCHIVED.value:
                raise InputError(f"journey {journey_id!r} is archived", field="id")
            if status is JourneyStatus.PAUSED and current != JourneyStatus.LIVE.value:
                raise InputError(f"journey {journey_id!r} is {current}, not live", field="id")
            conn.execute(
                update(JourneyRow)
                .where(JourneyRow.workspace_id == workspace_id, JourneyRow.journey_id == journey_id)
                .values(status=status.value, updated_at=self.clock())
            )
        self.forget(workspace_id)

    def forget(self, workspace_id: str) -> None:
        """Drop this process's caches of a workspace's live journeys and statuses."""
        with self._lock:
            self._live.pop(workspace_id, None)
            for key in [k for k in self._status if k[0] == workspace_id]:
                del self._status[key]
        self.db.forget_journey_workspaces()

    # -- reading --------------------------------------------------------------------------------

    @staticmethod
    def _latest_definition(conn: Any, workspace_id: str, journey_id: str) -> str | None:
        value = conn.scalar(
            select(JourneyVersionRow.definition)
            .where(
                JourneyVersionRow.workspace_id == workspace_id,
                JourneyVersionRow.journey_id == journey_id,
            )
            .order_by(JourneyVersionRow.version.desc())
            .limit(1)
        )
        return None if value is None else str(value)

    def version(self, workspace_id: str, journey_id: str, version: int) -> Journey:
        """Published version ``version`` of a journey (cached: versions never change)."""
        key = (workspace_id, journey_id, version)
        found = self._versions.get(key)
        if found is not None:
            return found
        with self.db.read() as conn:
            definition = conn.scalar(
                select(JourneyVersionRow.definition).where(
                    JourneyVersionRow.workspace_id == workspace_id,
                    JourneyVersionRow.journey_id == journey_id,
                    JourneyVersionRow.version == version,
                )
            )
        if definition is None:
            raise NotFound(f"no version {version} of journey {journey_id!r}")
        journey = publish(parse_journey(json.loads(definition), source=journey_id), version)
        with self._lock:
            self._versions[key] = journey
        return journey

    def live(self, workspace_id: str) -> tuple[Journey, ...]:
        """The live version of every live journey of a workspace (cached briefly)."""
        now = time.monotonic()
        hit = self._live.get(workspace_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.db.read() as conn:
            rows = conn.execute(
                select(JourneyRow.journey_id, JourneyRow.live_version).where(
                    JourneyRow.workspace_id == workspace_id,
                    JourneyRow.status == JourneyStatus.LIVE.value,
                )
            ).all()
        journeys = tuple(
            self.version(workspace_id, jid, v) for jid, v in sorted(rows) if v is not None
        )
        with self._lock:
            self._live[workspace_id] = (journeys, now + self._live_cache_seconds)
        return journeys

    def status(self, workspace_id: str, journey_id: str) -> JourneyStatus:
        """A journey's status (cached briefly): the runtime asks for every instance it moves."""
        now = time.monotonic()
        hit = self._status.get((workspace_id, journey_id))
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.db.read() as conn:
            value = conn.scalar(
                select(JourneyRow.status).where(
                    JourneyRow.workspace_id == workspace_id, JourneyRow.journey_id == journey_id
                )
            )
        status = JourneyStatus(value) if value else JourneyStatus.ARCHIVED
        with self._lock:
            self._status[(workspace_id, journey_id)] = (status, now + self._live_cache_seconds)
        return status

    def summaries(self, workspace_id: str) -> list[JourneySummary]:
        with self.db.read() as conn:
            journeys = conn.execute(
                select(JourneyRow).where(JourneyRow.workspace_id == workspace_id)
            ).all()
            versions = dict(
                conn.execute(
                    select(JourneyVersionRow.journey_id, func.count())
                    .where(JourneyVersionRow.workspace_id == workspace_id)
                    .group_by(JourneyVersionRow.journey_id)
                ).all()
            )
            counts: dict[tuple[str, str], int] = {}
            for jid, status, n in conn.execute(
                select(InstanceRow.journey_id, InstanceRow.status, func.count())
                .where(InstanceRow.workspace_id == workspace_id)
                .group_by(InstanceRow.journey_id, InstanceRow.status)
            ):
                counts[(jid, status)] = int(n)
        out = []
        for row in sorted(journeys, key=lambda r: str(r.journey_id)):
            entered = sum(n for (jid, _), n in counts.items() if jid == row.journey_id)
            out.append(
                JourneySummary(
                    journey_id=row.journey_id,
                    name=row.name,
                    status=JourneyStatus(row.status),
                    live_version=row.live_version,
                    versions=int(versions.get(row.journey_id, 0)),
                    has_draft=row.draft is not None,
                    active=counts.get((row.journey_id, "active"), 0),
                    entered=entered,
                    updated_at=row.updated_at,
                )
            )
        return out

    def records(
        self, workspace_id: str, journey_id: str, *, version: int | None = None
    ) -> list[StepRecord]:
        """The journey's step records, oldest first (all versions unless ``version``)."""
        query = select(StepRecordRow).where(
            StepRecordRow.workspace_id == workspace_id, StepRecordRow.journey_id == journey_id
        )
        if version is not None:
            query = query.where(StepRecordRow.version == version)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(StepRecordRow.id)).all()
        return [
            StepRecord(
                kind=RecordKind(r.kind), instance_id=r.instance_id, journey_id=r.journey_id,
                version=r.version, person_id=r.person_id, at=r.at, step_id=r.step_id,
                step_type=r.step_type, outcome=r.outcome, branch=r.branch,
            )
            for r in rows
        ]  # fmt: skip

    def stats(
        self, workspace_id: str, journey_id: str, *, version: int | None = None
    ) -> JourneyStats:
        """Per-step counts, conversion to goal and split results, from the step records.

        Counted against the newest version's steps (or ``version``'s); records of steps an
        older version had and the newer has not are left out of the per-step table.
        """
        with self.db.read() as conn:
            live = conn.scalar(
                select(func.max(JourneyVersionRow.version)).where(
                    JourneyVersionRow.workspace_id == workspace_id,
                    JourneyVersionRow.journey_id == journey_id,
                )
            )
        if live is None:
            raise NotFound(f"journey {journey_id!r} has no published version")
        journey = self.version(workspace_id, journey_id, version or int(live))
        return compute_stats(journey, self.records(workspace_id, journey_id, version=version))
