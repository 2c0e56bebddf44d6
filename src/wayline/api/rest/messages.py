"""``/api/v1/messages``: the messages journeys sent (or skipped, deferred, failed), with history.

A message is a ``send`` row of the journey outbox. Its status history is put together from the
outbox row (queued, then its final status), the step records the delivery wrote (``sent``,
``send_skipped``, ``send_deferred`` with their reason) and, for the ``log`` channel, the message
it kept. :func:`messages_page` is shared with the customer timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from wayline.api.rest.deps import Page, PageParams, Paging, Workspace
from wayline.events.importers.jobs import MAX_OFFSET
from wayline.storage.db import Database
from wayline.storage.journey_models import MessageLogRow, OutboxRow, StepRecordRow

router = APIRouter(prefix="/messages", tags=["Messages"])

MessageStatus = Literal["pending", "sent", "skipped", "failed"]
_DELIVERY_KINDS = ("sent", "send_skipped", "send_deferred")


class StatusChange(BaseModel):
    status: str
    at: datetime
    detail: str | None = None


class MessageOut(BaseModel):
    id: int
    person_id: str
    channel: str
    journey_id: str
    journey_version: int
    step_id: str
    template: str | None
    status: str
    outcome: str | None
    """Why it was skipped or failed, or the provider's message id once sent."""
    to: str | None
    attempts: int
    created_at: datetime
    done_at: datetime | None
    history: list[StatusChange]


def _template_of(payload: str) -> str | None:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    found = value.get("template")
    if isinstance(found, dict):
        found = found.get("name")
    return found if isinstance(found, str) else None


def _messages_of(db: Database, workspace_id: str, rows: Sequence[Any]) -> list[MessageOut]:
    if not rows:
        return []
    journeys = sorted({r.journey_id for r in rows})
    instances = sorted({r.instance_id for r in rows})
    keys = sorted({r.idempotency_key for r in rows})
    with db.read() as conn:
        records = conn.execute(
            select(
                StepRecordRow.instance_id,
                StepRecordRow.step_id,
                StepRecordRow.kind,
                StepRecordRow.outcome,
                StepRecordRow.at,
            )
            .where(
                # The journeys too: the index is (workspace, journey, instance).
                StepRecordRow.workspace_id == workspace_id,
                StepRecordRow.journey_id.in_(journeys),
                StepRecordRow.instance_id.in_(instances),
                StepRecordRow.kind.in_(_DELIVERY_KINDS),
            )
            .order_by(StepRecordRow.at, StepRecordRow.id)
        ).all()
        logged = conn.execute(
            select(MessageLogRow.idempotency_key, MessageLogRow.to_address).where(
                MessageLogRow.workspace_id == workspace_id,
                MessageLogRow.idempotency_key.in_(keys),
            )
        ).all()
    by_step: dict[tuple[str, str | None], list[StatusChange]] = {}
    for instance_id, step_id, kind, outcome, at in records:
        status = {"sent": "sent", "send_skipped": "skipped", "send_deferred": "deferred"}[kind]
        by_step.setdefault((instance_id, step_id), []).append(
            StatusChange(status=status, at=at, detail=outcome)
        )
    to_of = dict(logged)
    out: list[MessageOut] = []
    for r in rows:
        history = [StatusChange(status="queued", at=r.created_at)]
        history += by_step.get((r.instance_id, r.step_id), [])
        if r.done_at is not None and not any(h.status == r.status for h in history[1:]):
            history.append(StatusChange(status=r.status, at=r.done_at, detail=r.outcome))
        out.append(
            MessageOut(
                id=r.id,
                person_id=r.person_id,
                channel=r.channel,
                journey_id=r.journey_id,
                journey_version=r.version,
                step_id=r.step_id,
                template=_template_of(r.payload),
                status=r.status,
                outcome=r.outcome,
                to=to_of.get(r.idempotency_key),
                attempts=r.attempts,
                created_at=r.created_at,
                done_at=r.done_at,
                history=history,
            )
        )
    return out


def messages_page(
    db: Database,
    workspace_id: str,
    *,
    limit: int,
    offset: int,
    person_id: str | None = None,
    journey_id: str | None = None,
    step_id: str | None = None,
    status: str | None = None,
    channel: str | None = None,
) -> tuple[list[MessageOut], int]:
    """One page of the workspace's messages, newest first, and how many match."""
    offset = min(offset, MAX_OFFSET)  # SQL engines refuse offsets past 64 bits
    where = [OutboxRow.workspace_id == workspace_id, OutboxRow.kind == "send"]
    if person_id is not None:
        where.append(OutboxRow.person_id == person_id)
    if journey_id is not None:
        where.append(OutboxRow.journey_id == journey_id)
    if step_id is not None:
        where.append(OutboxRow.step_id == step_id)
    if status is not None:
        where.append(OutboxRow.status == status)
    if channel is not None:
        where.append(OutboxRow.channel == channel)
    with db.read() as conn:
        total = conn.scalar(select(func.count()).select_from(OutboxRow).where(*where))
        rows = conn.execute(
            select(OutboxRow)
            .where(*where)
            .order_by(OutboxRow.created_at.desc(), OutboxRow.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
    return _messages_of(db, workspace_id, rows), int(total or 0)


@router.get("", response_model=Page[MessageOut])
def list_messages(
    ctx: Workspace,
    paging: Paging,
    customer: Annotated[str | None, Query(description="A customer's person id.")] = None,
    journey: Annotated[str | None, Query(description="A journey id.")] = None,
    step: Annotated[str | None, Query(description="A step id (with journey).")] = None,
    status: Annotated[MessageStatus | None, Query(description="Delivery status.")] = None,
    channel: Annotated[str | None, Query(description="email, whatsapp, sms…")] = None,
) -> Page[MessageOut]:
    items, total = messages_page(
        ctx.db,
        ctx.workspace_id,
        limit=paging.limit,
        offset=paging.offset,
        person_id=customer,
        journey_id=journey,
        step_id=step,
        status=status,
        channel=channel,
    )
    return Page[MessageOut].of(items, total, PageParams(paging.limit, paging.offset))
