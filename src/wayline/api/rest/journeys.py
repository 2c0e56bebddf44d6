"""``/api/v1/journeys``: journeys as documents of the journey language — drafts, validation,
publishing, pausing, archiving, per-step stats, YAML import and export.

A journey's *document* is the JSON form of a journey file (``docs/journey-language.md``). The
dashboard's builder edits that same document, so what the API stores is exactly what a user
would write by hand.

Drafts may be invalid: a builder saves work in progress, and validation answers with every
problem located by the *node* at fault (a step id, ``$trigger``, ``$goal`` or ``$journey``).
Publishing an invalid draft is refused with 409 and the same problems. Published versions are
immutable (:class:`~wayline.journeys.runtime.catalog.JourneyCatalog` freezes them).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import distinct, func, insert, select, update

from wayline.api.rest.deps import Page, Paging, Workspace, WorkspaceContext
from wayline.errors import Conflict, InputError, NotFound, PayloadTooLarge
from wayline.journeys.definition import DefinitionError, fingerprint, parse_journey
from wayline.journeys.engine import RecordKind
from wayline.journeys.entry import JourneyStatus
from wayline.journeys.model import Journey, SplitStep, step_type
from wayline.journeys.runtime.catalog import JourneyCatalog
from wayline.journeys.stats import BranchStats, JourneyStats, StepStats
from wayline.storage.db import Database
from wayline.storage.journey_models import (
    JourneyRow,
    JourneyVersionRow,
    StepCountRow,
    StepRecordRow,
)

router = APIRouter(prefix="/journeys", tags=["Journeys"])

MAX_DOCUMENT_BYTES = 1_000_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JourneyId = Annotated[
    str, Path(pattern=_ID.pattern, description="The journey's id (as in its document).")
]

#: Nodes of the builder that are not steps (``$`` cannot start a step id).
TRIGGER_NODE, GOAL_NODE, JOURNEY_NODE = "$trigger", "$goal", "$journey"


# --- documents -------------------------------------------------------------------------------


def _plain(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError("a journey is a mapping with id, name, trigger, steps", field="body")
    # Dates YAML turned into objects become ISO text, as the catalog stores files.
    plain: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return plain


def parse_document_text(text: str, *, yaml_text: bool, source: str = "body") -> dict[str, Any]:
    """A journey document from JSON or YAML text (not yet validated)."""
    try:
        data = yaml.safe_load(text) if yaml_text else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        kind = "YAML" if yaml_text else "JSON"
        raise InputError(f"not valid {kind}: {exc}", source=source) from None
    except RecursionError:
        raise InputError("the document is nested too deeply", source=source) from None
    return _plain(data)


async def document_from_request(request: Request) -> dict[str, Any]:
    """The request body as a journey document: JSON, or YAML by its Content-Type."""
    body = await request.body()
    if len(body) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(f"a journey document is at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the body is not UTF-8 text", field="body") from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return parse_document_text(text, yaml_text=content_type in _YAML_TYPES)


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}

_TOP_ORDER = ("id", "name", "description", "timezone", "trigger", "goal", "entry", "steps")
_STEP_ORDER = ("id", "type", "description", "channel", "template", "variables", "duration",
               "time", "weekdays", "timeout", "holdout", "branches", "cases", "set", "unset",
               "url", "method", "headers", "body", "next", "on_timeout", "default")  # fmt: skip
_BRANCH_ORDER = ("name", "message", "action", "event", "where", "weight", "when", "next")
_NESTED_ORDER = {
    "trigger": ("event", "where", "segment", "segment_rule", "schedule"),
    "goal": ("event", "where", "within"),
    "entry": ("policy", "again_after", "window", "throttle"),
}


def _ordered(data: Any, order: tuple[str, ...]) -> Any:
    if not isinstance(data, dict):
        return data
    keys = [k for k in order if k in data] + [k for k in data if k not in order]
    return {k: data[k] for k in keys}


def readable_order(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document with its keys in the order people write journey files (stored documents
    come back with sorted keys). Values are unchanged."""
    out: dict[str, Any] = _ordered(dict(document), _TOP_ORDER)
    for key, order in _NESTED_ORDER.items():
        if key in out:
            out[key] = _ordered(out[key], order)
    if isinstance(out.get("steps"), list):
        steps = []
        for step in out["steps"]:
            step = _ordered(step, _STEP_ORDER)
            for key in ("branches", "cases"):
                if isinstance(step, dict) and isinstance(step.get(key), list):
                    step[key] = [_ordered(b, _BRANCH_ORDER) for b in step[key]]
            steps.append(step)
        out["steps"] = steps
    return out


def to_yaml(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(readable_order(document), sort_keys=False, allow_unicode=True, width=100)


# --- validation ------------------------------------------------------------------------------


class Problem(BaseModel):
    path: str = Field(description="Where, as the validator writes it: steps[3] 'x' field 'y'.")
    node: str = Field(description="The builder node at fault: a step id, $trigger, $goal or "
                      "$journey.")  # fmt: skip
    field: str | None = Field(description="The field inside that node, when known.")
    message: str


_STEP_WHERE = re.compile(r"^steps\[(\d+)\](?: '(?P<id>.*?)')?(?: field '(?P<field>.*)')?$")
_FIELD_WHERE = re.compile(r"^field '(?P<field>.*)'$")


def locate(where: str, message: str, document: Mapping[str, Any]) -> Problem:
    """A validator location (``steps[3] 'reminder' field 'timeout'``) → the node at fault."""
    step = _STEP_WHERE.match(where)
    if step:
        index = int(step.group(1))
        steps = document.get("steps")
        node = step.group("id")
        if isinstance(steps, list) and index < len(steps) and isinstance(steps[index], dict):
            found = steps[index].get("id")
            node = found if isinstance(found, str) and found else node
        return Problem(
            path=where, node=node or f"steps[{index}]", field=step.group("field"), message=message
        )
    named = _FIELD_WHERE.match(where)
    field = named.group("field") if named else None
    head = (field or "").split(".", 1)[0].split("[", 1)[0]
    node = {"trigger": TRIGGER_NODE, "goal": GOAL_NODE}.get(head, JOURNEY_NODE)
    return Problem(path=where, node=node, field=field, message=message)


def problems_of(document: Mapping[str, Any]) -> list[Problem]:
    """Every problem of a journey document (empty when it is valid)."""
    try:
        parse_journey(document, source="journey")
    except DefinitionError as exc:
        return [locate(where, message, document) for where, message in exc.problems]
    return []


# --- storage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredJourney:
    journey_id: str
    name: str
    status: JourneyStatus
    live_version: int | None
    draft: dict[str, Any] | None
    live: dict[str, Any] | None
    """The newest published version's document."""
    versions: int
    updated_at: datetime


def load(db: Database, workspace_id: str, journey_id: str) -> StoredJourney:
    with db.read() as conn:
        row = conn.execute(
            select(JourneyRow).where(
                JourneyRow.workspace_id == workspace_id, JourneyRow.journey_id == journey_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no journey {journey_id!r}")
        newest = conn.execute(
            select(JourneyVersionRow.definition, JourneyVersionRow.version)
            .where(
                JourneyVersionRow.workspace_id == workspace_id,
                JourneyVersionRow.journey_id == journey_id,
            )
            .order_by(JourneyVersionRow.version.desc())
            .limit(1)
        ).first()
    return StoredJourney(
        journey_id=row.journey_id,
        name=row.name,
        status=JourneyStatus(row.status),
        live_version=row.live_version,
        draft=json.loads(row.draft) if row.draft is not None else None,
        live=json.loads(newest.definition) if newest is not None else None,
        versions=int(newest.version) if newest is not None else 0,
        updated_at=row.updated_at,
    )


def version_document(
    db: Database, workspace_id: str, journey_id: str, version: int
) -> dict[str, Any]:
    with db.read() as conn:
        text = conn.scalar(
            select(JourneyVersionRow.definition).where(
                JourneyVersionRow.workspace_id == workspace_id,
                JourneyVersionRow.journey_id == journey_id,
                JourneyVersionRow.version == version,
            )
        )
    if text is None:
        raise NotFound(f"journey {journey_id!r} has no version {version}")
    document: dict[str, Any] = json.loads(text)
    return document


def _exists(db: Database, workspace_id: str, journey_id: str) -> str | None:
    with db.read() as conn:
        status = conn.scalar(
            select(JourneyRow.status).where(
                JourneyRow.workspace_id == workspace_id, JourneyRow.journey_id == journey_id
            )
        )
    return None if status is None else str(status)


def _store_unvalidated(
    db: Database, workspace_id: str, document: Mapping[str, Any], journey_id: str, now: datetime
) -> None:
    # The catalog keeps valid drafts only; a builder must also keep work in progress, so an
    # invalid draft is written to the same row the catalog uses (it never runs: only
    # published versions do, and publishing validates again).
    name = document.get("name")
    name = name if isinstance(name, str) and 0 < len(name) <= 200 else journey_id
    text = json.dumps(document, sort_keys=True, default=str)
    with db.write() as conn:
        status = conn.scalar(
            select(JourneyRow.status).where(
                JourneyRow.workspace_id == workspace_id, JourneyRow.journey_id == journey_id
            )
        )
        if status is None:
            conn.execute(
                insert(JourneyRow).values(
                    workspace_id=workspace_id, journey_id=journey_id, name=name,
                    status=JourneyStatus.DRAFT.value, draft=text,
                    draft_fingerprint=fingerprint(document), live_version=None,
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        else:
            if status == JourneyStatus.ARCHIVED.value:
                raise Conflict(f"journey {journey_id!r} is archived")
            conn.execute(
                update(JourneyRow)
                .where(JourneyRow.workspace_id == workspace_id, JourneyRow.journey_id == journey_id)
                .values(draft=text, draft_fingerprint=fingerprint(document), updated_at=now)
            )


def document_id(document: Mapping[str, Any]) -> str:
    journey_id = document.get("id")
    if not isinstance(journey_id, str) or not _ID.match(journey_id):
        raise InputError(
            "a journey needs an 'id' of letters, digits, '-', '_' or '.' (e.g. abandoned-cart)",
            field="id",
        )
    return journey_id


def save_draft(
    ctx: WorkspaceContext, document: dict[str, Any], *, create: bool | None = None
) -> tuple[str, list[Problem]]:
    """Keep ``document`` as its journey's draft, valid or not; returns (id, problems).

    ``create``: True refuses an id already in use (409), False an unknown one (404).
    """
    journey_id = document_id(document)
    status = _exists(ctx.db, ctx.workspace_id, journey_id)
    if create is True and status is not None:
        raise Conflict(f"a journey {journey_id!r} exists already: edit it or pick another id")
    if create is False and status is None:
        raise NotFound(f"no journey {journey_id!r}")
    if status == JourneyStatus.ARCHIVED.value:
        raise Conflict(f"journey {journey_id!r} is archived")
    problems = problems_of(document)
    catalog = JourneyCatalog(ctx.db)
    if problems:
        _store_unvalidated(ctx.db, ctx.workspace_id, document, journey_id, catalog.clock())
    else:
        catalog.save_draft(ctx.workspace_id, document, source=journey_id)
    return journey_id, problems


def current_document(stored: StoredJourney) -> dict[str, Any]:
    """What the builder edits: the draft, else the newest published version."""
    document = stored.draft if stored.draft is not None else stored.live
    assert document is not None  # a journey row always has one or the other
    return document


class Invalid(Conflict):
    """Publishing a journey whose document has problems."""

    def __init__(self, journey_id: str, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(
            f"journey {journey_id!r} has {len(problems)} problem(s); first: "
            f"{first.path + ': ' if first.path else ''}{first.message}"
        )


def publish(ctx: WorkspaceContext, journey_id: str) -> tuple[int, bool]:
    """Publish the draft (or set the newest version live again); returns (version, created)."""
    stored = load(ctx.db, ctx.workspace_id, journey_id)
    if stored.status is JourneyStatus.ARCHIVED:
        raise Conflict(f"journey {journey_id!r} is archived")
    document = current_document(stored)
    problems = problems_of(document)
    if problems:
        raise Invalid(journey_id, problems)
    _, version, created = JourneyCatalog(ctx.db).publish(
        ctx.workspace_id, document, journey_id=journey_id, source=journey_id
    )
    return version, created


def pause(ctx: WorkspaceContext, journey_id: str) -> None:
    stored = load(ctx.db, ctx.workspace_id, journey_id)
    if stored.status is not JourneyStatus.LIVE:
        raise Conflict(f"journey {journey_id!r} is {stored.status.value}, not live")
    JourneyCatalog(ctx.db).set_status(ctx.workspace_id, journey_id, JourneyStatus.PAUSED)


def resume(ctx: WorkspaceContext, journey_id: str) -> int:
    """Set a paused journey live again on its newest version (a pending draft stays a draft)."""
    stored = load(ctx.db, ctx.workspace_id, journey_id)
    if stored.status is not JourneyStatus.PAUSED or stored.live is None:
        raise Conflict(f"journey {journey_id!r} is {stored.status.value}, not paused")
    catalog = JourneyCatalog(ctx.db)
    _, version, _ = catalog.publish(
        ctx.workspace_id, stored.live, journey_id=journey_id, source=journey_id
    )
    # The catalog's publish clears the draft; resuming must not throw away unpublished edits.
    if stored.draft is not None:
        _store_unvalidated(ctx.db, ctx.workspace_id, stored.draft, journey_id, catalog.clock())
    return version


def archive(ctx: WorkspaceContext, journey_id: str) -> None:
    stored = load(ctx.db, ctx.workspace_id, journey_id)
    if stored.status is JourneyStatus.ARCHIVED:
        raise Conflict(f"journey {journey_id!r} is archived already")
    JourneyCatalog(ctx.db).set_status(ctx.workspace_id, journey_id, JourneyStatus.ARCHIVED)


# --- reading ---------------------------------------------------------------------------------


class JourneyListItem(BaseModel):
    id: str
    name: str
    status: JourneyStatus
    live_version: int | None
    versions: int
    has_draft: bool
    active: int = Field(description="Customers inside now.")
    entered: int
    converted: int = Field(description="Customers who reached the goal.")
    messages_sent: int
    updated_at: datetime


def headline_counts(db: Database, workspace_id: str) -> dict[str, dict[str, int]]:
    """journey id → {converted, sent}: one grouped sum over the step counts."""
    kinds = ("converted", "sent")
    c = StepCountRow
    with db.read() as conn:
        rows = conn.execute(
            select(c.journey_id, c.kind, func.sum(c.n))
            .where(c.workspace_id == workspace_id, c.kind.in_(kinds))
            .group_by(c.journey_id, c.kind)
        ).all()
    out: dict[str, dict[str, int]] = {}
    for journey_id, kind, n in rows:
        out.setdefault(journey_id, dict.fromkeys(kinds, 0))[kind] = int(n)
    return out


def list_journeys(db: Database, workspace_id: str) -> list[JourneyListItem]:
    counts = headline_counts(db, workspace_id)
    items = []
    for s in JourneyCatalog(db).summaries(workspace_id):
        c = counts.get(s.journey_id, {})
        items.append(
            JourneyListItem(
                id=s.journey_id, name=s.name, status=s.status, live_version=s.live_version,
                versions=s.versions, has_draft=s.has_draft, active=s.active, entered=s.entered,
                converted=c.get("converted", 0), messages_sent=c.get("sent", 0),
                updated_at=s.updated_at,
            )
        )  # fmt: skip
    return items


class JourneyOut(BaseModel):
    id: str
    name: str
    status: JourneyStatus
    live_version: int | None
    versions: int
    has_draft: bool
    document: dict[str, Any] = Field(
        description="The draft, or the newest published version when there is no draft."
    )
    valid: bool
    problems: list[Problem]
    updated_at: datetime

    @classmethod
    def of(cls, stored: StoredJourney) -> JourneyOut:
        document = current_document(stored)
        problems = problems_of(document)
        return cls(
            id=stored.journey_id,
            name=stored.name,
            status=stored.status,
            live_version=stored.live_version,
            versions=stored.versions,
            has_draft=stored.draft is not None,
            document=document,
            valid=not problems,
            problems=problems,
            updated_at=stored.updated_at,
        )


class ValidationOut(BaseModel):
    valid: bool
    problems: list[Problem]


class PublishOut(BaseModel):
    id: str
    status: JourneyStatus
    live_version: int
    created: bool = Field(description="False when the draft equals the newest version.")


class StepStatsOut(BaseModel):
    step_id: str
    step_type: str
    entered: int = Field(description="Customers who reached the step.")
    completed: int = Field(description="Customers who left it onwards.")
    sent: int
    failed: int = Field(description="Sends the channel refused or that could not be rendered.")
    skipped: dict[str, int] = Field(description="Sends skipped, by reason.")
    deferred: int
    outcomes: dict[str, int]
    branches: dict[str, int]
    ended_here: dict[str, int]


class BranchOut(BaseModel):
    name: str
    customers: int
    converted: int
    conversion_rate: float


class StatsOut(BaseModel):
    id: str
    version: int | None = Field(description="The version counted, or null for all versions.")
    entered: int
    converted: int
    conversion_rate: float
    goal: str | None = Field(description="The goal event (conversions end the journey).")
    exited: int
    completed: int
    active: int
    refused: dict[str, int]
    sent_by_channel: dict[str, int]
    steps: list[StepStatsOut]
    splits: dict[str, list[BranchOut]] = Field(
        description="Per split step, each branch (the holdout included) and its conversions."
    )


def _failed(skipped: Mapping[str, int]) -> int:
    # The deliverer records a provider refusal as "failed: …" and a template error as
    # "render: …"; other skips are policies (consent, caps) doing their job.
    return sum(n for reason, n in skipped.items() if reason.startswith(("failed", "render")))


def stats_out(
    journey_id: str, stats: JourneyStats, version: int | None, goal: str | None
) -> StatsOut:
    return StatsOut(
        id=journey_id,
        version=version,
        entered=stats.entered,
        converted=stats.converted,
        conversion_rate=stats.conversion_rate,
        goal=goal,
        exited=stats.exited,
        completed=stats.completed,
        active=stats.active,
        refused=dict(stats.refused),
        sent_by_channel=dict(stats.sent_by_channel),
        steps=[
            StepStatsOut(
                step_id=s.step_id,
                step_type=s.step_type,
                entered=s.reached,
                completed=s.left,
                sent=s.sent,
                failed=_failed(s.skipped),
                skipped=dict(s.skipped),
                deferred=s.deferred,
                outcomes=dict(s.outcomes),
                branches=dict(s.branches),
                ended_here=dict(s.ended_here),
            )
            for s in stats.steps
        ],
        splits={
            split: [
                BranchOut(
                    name=b.name,
                    customers=b.customers,
                    converted=b.converted,
                    conversion_rate=b.conversion_rate,
                )
                for b in branches
            ]
            for split, branches in stats.splits.items()
        },
    )


def aggregated_stats(
    db: Database, workspace_id: str, journey: Journey, *, version: int | None = None
) -> JourneyStats:
    """:func:`wayline.journeys.stats.compute_stats` over the stored step records, counted by
    the database.

    The same numbers as :meth:`JourneyCatalog.stats` (a test holds them equal), which reads
    every record into Python: about 14 s for a 50,000-customer journey. The counts come from
    ``journey_step_counts`` (a few rows per step, kept with the records), not from grouping
    the records (0.4–0.8 s at 350,000 of them) — the builder page draws them on every visit.
    Split results need distinct customers per branch, so they still read the split steps'
    records, when the journey has splits.
    """
    r, c = StepRecordRow, StepCountRow
    where = [r.workspace_id == workspace_id, r.journey_id == journey.id]
    counted = [c.workspace_id == workspace_id, c.journey_id == journey.id]
    if version is not None:
        where.append(r.version == version)
        counted.append(c.version == version)
    split_ids = [st.id for st in journey.steps if isinstance(st, SplitStep)]
    with db.read() as conn:
        groups = [
            # Counters store absent values as '': back to None, as the records have them.
            (kind, step_id or None, outcome or None, branch or None, int(n))
            for kind, step_id, outcome, branch, n in conn.execute(
                select(c.kind, c.step_id, c.outcome, c.branch, func.sum(c.n))
                .where(*counted)
                .group_by(c.kind, c.step_id, c.outcome, c.branch)
            )
        ]
        converted = (
            select(r.instance_id).where(*where, r.kind == RecordKind.CONVERTED.value).distinct()
        ).subquery()
        split_rows = (
            conn.execute(
                select(
                    r.step_id,
                    r.branch,
                    func.count(distinct(r.instance_id)),
                    func.count(distinct(converted.c.instance_id)),
                )
                .select_from(r)
                .outerjoin(converted, converted.c.instance_id == r.instance_id)
                .where(
                    *where,
                    r.kind == RecordKind.LEFT.value,
                    r.step_id.in_(split_ids),
                    r.branch.is_not(None),
                )
                .group_by(r.step_id, r.branch)
            ).all()
            if split_ids
            else []
        )
    totals: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    per_step: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    by_channel: Counter[str] = Counter()
    for kind, step_id, outcome, branch, n in groups:
        totals[kind] += n
        step = per_step[step_id or ""]
        match RecordKind(kind):
            case RecordKind.ENTRY_REFUSED:
                refused[outcome or "unknown"] += n
            case RecordKind.REACHED:
                step["reached"][""] += n
            case RecordKind.LEFT:
                step["left"][""] += n
                step["outcomes"][outcome or ""] += n
                if branch is not None:
                    step["branches"][branch] += n
            case RecordKind.SENT:
                step["sent"][""] += n
                by_channel[branch or "?"] += n
            case RecordKind.SEND_SKIPPED:
                step["skipped"][outcome or ""] += n
            case RecordKind.SEND_DEFERRED:
                step["deferred"][""] += n
            case RecordKind.CONVERTED | RecordKind.EXITED | RecordKind.COMPLETED:
                per_step[step_id or "$end"]["ended"][kind] += n
    ended = sum(
        totals[k.value] for k in (RecordKind.CONVERTED, RecordKind.EXITED, RecordKind.COMPLETED)
    )
    splits: dict[str, list[BranchStats]] = {split: [] for split in sorted(split_ids)}
    for step_id, branch, customers, n_converted in sorted(split_rows):
        splits[str(step_id)].append(BranchStats(str(branch), int(customers), int(n_converted)))
    return JourneyStats(
        journey_id=journey.id,
        entered=totals[RecordKind.ENTERED.value],
        converted=totals[RecordKind.CONVERTED.value],
        exited=totals[RecordKind.EXITED.value],
        completed=totals[RecordKind.COMPLETED.value],
        active=totals[RecordKind.ENTERED.value] - ended,
        refused=dict(refused),
        steps=tuple(
            StepStats(
                step_id=st.id,
                step_type=step_type(st),
                reached=per_step[st.id]["reached"][""],
                left=per_step[st.id]["left"][""],
                outcomes=dict(per_step[st.id]["outcomes"]),
                branches=dict(per_step[st.id]["branches"]),
                sent=per_step[st.id]["sent"][""],
                skipped=dict(per_step[st.id]["skipped"]),
                deferred=per_step[st.id]["deferred"][""],
                ended_here=dict(per_step[st.id]["ended"]),
            )
            for st in journey.steps
        ),
        splits={split: tuple(branches) for split, branches in splits.items()},
        sent_by_channel=dict(by_channel),
    )


def journey_stats(ctx: WorkspaceContext, journey_id: str, version: int | None) -> StatsOut:
    stored = load(ctx.db, ctx.workspace_id, journey_id)
    if stored.live is None:
        raise Conflict(f"journey {journey_id!r} is not published yet: it has no stats")
    if version is not None and not 1 <= version <= stored.versions:
        raise NotFound(f"journey {journey_id!r} has no version {version}")
    # Counted against the newest version's steps (or the one asked for), as the catalog does.
    journey = JourneyCatalog(ctx.db).version(
        ctx.workspace_id, journey_id, version or stored.versions
    )
    stats = aggregated_stats(ctx.db, ctx.workspace_id, journey, version=version)
    goal = journey.goal.matcher.event if journey.goal is not None else None
    return stats_out(journey_id, stats, version, goal)


# --- routes ----------------------------------------------------------------------------------


def _invalid_response(exc: Invalid) -> JSONResponse:
    first = exc.problems[0]
    return JSONResponse(
        {
            "success": False,
            "code": "conflict",
            "message": str(exc),
            "field": first.path or None,
            "problems": [p.model_dump() for p in exc.problems],
        },
        status_code=409,
    )


@router.get("", response_model=Page[JourneyListItem])
def list_route(
    ctx: Workspace,
    paging: Paging,
    status: Annotated[
        JourneyStatus | None, Query(description="Only journeys in this status.")
    ] = None,
) -> Page[JourneyListItem]:
    items = list_journeys(ctx.db, ctx.workspace_id)
    if status is not None:
        items = [i for i in items if i.status is status]
    return Page[JourneyListItem].of(
        items[paging.offset : paging.offset + paging.limit], len(items), paging
    )


@router.post("", status_code=201, response_model=JourneyOut, openapi_extra=_BODY_DOC)
async def create_route(ctx: Workspace, request: Request) -> JourneyOut:
    """Create a journey's first draft from a document (JSON, or YAML with a YAML Content-Type).
    The draft is kept even when invalid; ``problems`` says what to fix before publishing."""
    document = await document_from_request(request)
    journey_id, _ = save_draft(ctx, document, create=True)
    return JourneyOut.of(load(ctx.db, ctx.workspace_id, journey_id))


_YAML_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/yaml": {"schema": {"type": "string"}}},
    }
}


@router.post("/import", response_model=JourneyOut, openapi_extra=_YAML_BODY_DOC)
async def import_route(ctx: Workspace, request: Request, response: Response) -> JourneyOut:
    """A journey file (YAML; JSON is YAML too) becomes the draft of its journey: a new journey
    (201) or the new draft of an existing one (200)."""
    body = await request.body()
    if len(body) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(f"a journey file is at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the body is not UTF-8 text", field="body") from None
    document = parse_document_text(text, yaml_text=True)
    existed = _exists(ctx.db, ctx.workspace_id, document_id(document)) is not None
    journey_id, _ = save_draft(ctx, document)
    response.status_code = 200 if existed else 201
    return JourneyOut.of(load(ctx.db, ctx.workspace_id, journey_id))


@router.get("/{journey_id}", response_model=JourneyOut)
def get_route(ctx: Workspace, journey_id: JourneyId) -> JourneyOut:
    return JourneyOut.of(load(ctx.db, ctx.workspace_id, journey_id))


@router.put("/{journey_id}", response_model=JourneyOut, openapi_extra=_BODY_DOC)
async def put_route(ctx: Workspace, journey_id: JourneyId, request: Request) -> JourneyOut:
    """Replace the draft (the live version, if any, is untouched until published)."""
    document = await document_from_request(request)
    if document.get("id") != journey_id:
        raise InputError(f"the document's id must be {journey_id!r}", field="id")
    save_draft(ctx, document, create=False)
    return JourneyOut.of(load(ctx.db, ctx.workspace_id, journey_id))


@router.post("/{journey_id}/validate", response_model=ValidationOut)
async def validate_route(ctx: Workspace, journey_id: JourneyId, request: Request) -> ValidationOut:
    """Validate the stored draft, or the document in the body (nothing is saved)."""
    stored = load(ctx.db, ctx.workspace_id, journey_id)
    body = await request.body()
    document = await document_from_request(request) if body.strip() else current_document(stored)
    problems = problems_of(document)
    if not problems and document.get("id") != journey_id:
        problems = [locate("field 'id'", f"must be {journey_id!r}", document)]
    return ValidationOut(valid=not problems, problems=problems)


@router.post(
    "/{journey_id}/publish",
    response_model=PublishOut,
    responses={409: {"description": "The draft is invalid (its problems are listed)."}},
)
def publish_route(ctx: Workspace, journey_id: JourneyId) -> PublishOut | JSONResponse:
    try:
        version, created = publish(ctx, journey_id)
    except Invalid as exc:
        return _invalid_response(exc)
    return PublishOut(
        id=journey_id, status=JourneyStatus.LIVE, live_version=version, created=created
    )


@router.post("/{journey_id}/pause", response_model=JourneyOut)
def pause_route(ctx: Workspace, journey_id: JourneyId) -> JourneyOut:
    """Stop new entries; customers inside carry on."""
    pause(ctx, journey_id)
    return JourneyOut.of(load(ctx.db, ctx.workspace_id, journey_id))


@router.post("/{journey_id}/resume", response_model=JourneyOut)
def resume_route(ctx: Workspace, journey_id: JourneyId) -> JourneyOut:
    """Set a paused journey live again, on its newest published version."""
    resume(ctx, journey_id)
    return JourneyOut.of(load(ctx.db, ctx.workspace_id, journey_id))


@router.delete("/{journey_id}", status_code=204)
def archive_route(ctx: Workspace, journey_id: JourneyId) -> None:
    """Archive: no more entries, customers inside leave at their next step."""
    archive(ctx, journey_id)


@router.get("/{journey_id}/stats", response_model=StatsOut)
def stats_route(
    ctx: Workspace,
    journey_id: JourneyId,
    version: Annotated[int | None, Query(ge=1, description="One version only.")] = None,
) -> StatsOut:
    """Per step (entered, completed, sent, failed), per split branch, and goal conversions."""
    return journey_stats(ctx, journey_id, version)


@router.get(
    "/{journey_id}/export.yaml",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}}},
)
def export_route(
    ctx: Workspace,
    journey_id: JourneyId,
    version: Annotated[int | None, Query(ge=1, description="A published version.")] = None,
) -> Response:
    """The journey as a YAML file: the draft (or newest version), or a given version."""
    if version is None:
        document = current_document(load(ctx.db, ctx.workspace_id, journey_id))
    else:
        document = version_document(ctx.db, ctx.workspace_id, journey_id, version)
    return Response(
        to_yaml(document),
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{journey_id}.yaml"'},
    )
