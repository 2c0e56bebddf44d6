"""``/api/v1/customers``: search, profile, timeline of events and messages, consent.

A customer is a person id of the workspace: one with a profile (``customer_profiles``, kept from
``identify`` calls by the mover) or one the analytics store has events of (an imported order's
buyer has no profile until one is needed). Both sources are merged here; the functions below are
shared with the dashboard's customer pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, insert, or_, select, update

from wayline.api.rest.deps import Page, Paging, Workspace
from wayline.api.rest.messages import MessageOut, messages_page
from wayline.config import Settings
from wayline.errors import NotFound
from wayline.events.importers.jobs import MAX_OFFSET
from wayline.storage.analytics_access import analytics_reader
from wayline.storage.db import Database
from wayline.storage.models import CustomerProfile

router = APIRouter(prefix="/customers", tags=["Customers"])

CONSENT_CHANNELS = ("email", "whatsapp", "sms")


@dataclass(frozen=True)
class _Seen:
    first: datetime
    last: datetime
    events: int


class CustomerSummary(BaseModel):
    person_id: str
    email: str | None
    name: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    events: int


class Customer(CustomerSummary):
    phone: str | None
    first_name: str | None
    last_name: str | None
    timezone: str | None
    consent: dict[str, bool]
    """Per channel; a channel absent is unknown, which the send-time rules treat as no."""
    traits: dict[str, Any]
    has_profile: bool


class TimelineEvent(BaseModel):
    message_id: str
    type: str
    event: str
    page_path: str | None
    channel: str | None
    device_type: str | None
    revenue: Decimal | None
    currency: str | None
    properties: dict[str, Any]


class TimelineItem(BaseModel):
    kind: Literal["event", "message"]
    at: datetime
    event: TimelineEvent | None = None
    message: MessageOut | None = None


class ConsentPatch(BaseModel):
    """Consent per channel: ``true`` given, ``false`` refused, ``null`` forget (unknown)."""

    model_config = ConfigDict(extra="forbid")

    email: bool | None = None
    whatsapp: bool | None = None
    sms: bool | None = None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _name(first: str | None, last: str | None) -> str | None:
    full = " ".join(p for p in (first, last) if p)
    return full or None


def _events_seen(
    settings: Settings, workspace_id: str, query: str | None, also: list[str]
) -> dict[str, _Seen]:
    """Per person: first and last event, and how many — of the persons matching ``query`` on
    any id, and of the persons ``also`` (found by e-mail or name in their profiles)."""
    sql = (
        'SELECT person_id, min("timestamp"), max("timestamp"), count(*) FROM events '
        "WHERE workspace_id = ?"
    )
    params: list[Any] = [workspace_id]
    if query:
        sql += (
            " AND (person_id ILIKE ? ESCAPE '\\' OR user_id ILIKE ? ESCAPE '\\'"
            " OR anonymous_id ILIKE ? ESCAPE '\\' OR list_contains(?, person_id))"
        )
        params += [_like(query)] * 3 + [also]
    sql += " GROUP BY person_id"
    with analytics_reader(settings) as store:
        if store is None:
            return {}
        rows = store.con.execute(sql, params).fetchall()
    return {str(p): _Seen(first, last, int(n)) for p, first, last, n in rows}


def search_customers(
    db: Database,
    settings: Settings,
    workspace_id: str,
    query: str | None,
    *,
    limit: int,
    offset: int,
) -> tuple[list[CustomerSummary], int]:
    """Customers whose id, e-mail or name contains ``query``, most recently seen first."""
    query = (query or "").strip() or None
    p = CustomerProfile
    where: list[Any] = [p.workspace_id == workspace_id]
    if query:
        pattern = _like(query)
        where.append(
            or_(
                p.person_id.ilike(pattern, escape="\\"),
                p.email.ilike(pattern, escape="\\"),
                p.phone.ilike(pattern, escape="\\"),
                p.first_name.ilike(pattern, escape="\\"),
                p.last_name.ilike(pattern, escape="\\"),
                (func.coalesce(p.first_name, "") + " " + func.coalesce(p.last_name, "")).ilike(
                    pattern, escape="\\"
                ),
            )
        )
    with db.read() as conn:
        profiles = conn.execute(
            select(
                p.person_id, p.email, p.first_name, p.last_name, p.first_seen, p.last_seen
            ).where(*where)
        ).all()
    seen = _events_seen(settings, workspace_id, query, [row[0] for row in profiles])
    found: dict[str, CustomerSummary] = {}
    for person_id, email, first, last, first_seen, last_seen in profiles:
        s = seen.get(person_id)
        found[person_id] = CustomerSummary(
            person_id=person_id,
            email=email,
            name=_name(first, last),
            first_seen=min(first_seen, s.first) if s else first_seen,
            last_seen=max(last_seen, s.last) if s else last_seen,
            events=s.events if s else 0,
        )
    for person_id, s in seen.items():
        if person_id not in found:
            found[person_id] = CustomerSummary(
                person_id=person_id,
                email=None,
                name=None,
                first_seen=s.first,
                last_seen=s.last,
                events=s.events,
            )
    epoch = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(
        found.values(), key=lambda c: (-(c.last_seen or epoch).timestamp(), c.person_id)
    )
    return ordered[offset : offset + limit], len(ordered)


def _person_seen(settings: Settings, workspace_id: str, person_id: str) -> _Seen | None:
    with analytics_reader(settings) as store:
        if store is None:
            return None
        row = store.con.execute(
            'SELECT min("timestamp"), max("timestamp"), count(*) FROM events '
            "WHERE workspace_id = ? AND person_id = ?",
            [workspace_id, person_id],
        ).fetchone()
    if row is None or not row[2]:
        return None
    return _Seen(row[0], row[1], int(row[2]))


def get_customer(db: Database, settings: Settings, workspace_id: str, person_id: str) -> Customer:
    """One customer's profile, consent and first/last seen; NotFound when the workspace has
    neither a profile nor an event of ``person_id``."""
    p = CustomerProfile
    with db.read() as conn:
        row = conn.execute(
            select(p).where(p.workspace_id == workspace_id, p.person_id == person_id)
        ).first()
    seen = _person_seen(settings, workspace_id, person_id)
    if row is None and seen is None:
        raise NotFound(f"no customer '{person_id}'")
    if row is None:
        assert seen is not None
        return Customer(
            person_id=person_id,
            email=None,
            name=None,
            first_seen=seen.first,
            last_seen=seen.last,
            events=seen.events,
            phone=None,
            first_name=None,
            last_name=None,
            timezone=None,
            consent={},
            traits={},
            has_profile=False,
        )
    return Customer(
        person_id=person_id,
        email=row.email,
        name=_name(row.first_name, row.last_name),
        first_seen=min(row.first_seen, seen.first) if seen else row.first_seen,
        last_seen=max(row.last_seen, seen.last) if seen else row.last_seen,
        events=seen.events if seen else 0,
        phone=row.phone,
        first_name=row.first_name,
        last_name=row.last_name,
        timezone=row.timezone,
        consent={str(k): bool(v) for k, v in (row.consent or {}).items()},
        traits=dict(row.traits or {}),
        has_profile=True,
    )


def _events_of(
    settings: Settings, workspace_id: str, person_id: str, limit: int
) -> tuple[list[TimelineItem], int]:
    with analytics_reader(settings) as store:
        if store is None:
            return [], 0
        counted = store.con.execute(
            "SELECT count(*) FROM events WHERE workspace_id = ? AND person_id = ?",
            [workspace_id, person_id],
        ).fetchone()
        rows = store.con.execute(
            'SELECT message_id, type, event, "timestamp", page_path, channel, device_type, '
            "revenue, currency, properties FROM events WHERE workspace_id = ? AND person_id = ? "
            'ORDER BY "timestamp" DESC, message_id LIMIT ?',
            [workspace_id, person_id, limit],
        ).fetchall()
    items = []
    for mid, mtype, name, at, path, channel, device, revenue, currency, props in rows:
        try:
            properties = orjson.loads(props) if props else {}
        except orjson.JSONDecodeError:
            properties = {}
        items.append(
            TimelineItem(
                kind="event",
                at=at,
                event=TimelineEvent(
                    message_id=mid,
                    type=mtype,
                    event=name,
                    page_path=path,
                    channel=channel,
                    device_type=device,
                    revenue=revenue,
                    currency=currency,
                    properties=properties if isinstance(properties, dict) else {},
                ),
            )
        )
    return items, int(counted[0]) if counted else 0


def customer_timeline(
    db: Database,
    settings: Settings,
    workspace_id: str,
    person_id: str,
    *,
    limit: int,
    offset: int,
) -> tuple[list[TimelineItem], int]:
    """Events and messages of one customer, newest first: one page, and the total count."""
    get_customer(db, settings, workspace_id, person_id)  # NotFound for a stranger
    # The first offset+limit of each list hold the merged page's items.
    offset = min(offset, MAX_OFFSET)  # SQL engines refuse offsets past 64 bits
    wanted = offset + limit
    events, n_events = _events_of(settings, workspace_id, person_id, wanted)
    messages, n_messages = messages_page(
        db, workspace_id, limit=wanted, offset=0, person_id=person_id
    )
    merged = events + [TimelineItem(kind="message", at=m.created_at, message=m) for m in messages]
    merged.sort(key=lambda item: item.at, reverse=True)
    return merged[offset:wanted], n_events + n_messages


def set_consent(
    db: Database,
    settings: Settings,
    workspace_id: str,
    person_id: str,
    changes: dict[str, bool | None],
    *,
    now: datetime,
) -> Customer:
    """Record consent per channel (``None`` forgets it); creates the profile when missing."""
    customer = get_customer(db, settings, workspace_id, person_id)
    consent: dict[str, bool] = dict(customer.consent)
    for channel, value in changes.items():
        if value is None:
            consent.pop(channel, None)
        else:
            consent[channel] = value
    p = CustomerProfile
    with db.write() as conn:
        done = conn.execute(
            update(p)
            .where(p.workspace_id == workspace_id, p.person_id == person_id)
            .values(consent=consent)
        )
        if not done.rowcount:
            conn.execute(
                insert(p).values(
                    workspace_id=workspace_id,
                    person_id=person_id,
                    consent=consent,
                    traits={},
                    first_seen=customer.first_seen or now,
                    last_seen=customer.last_seen or now,
                )
            )
    return get_customer(db, settings, workspace_id, person_id)


@router.get("", response_model=Page[CustomerSummary])
def list_customers(
    ctx: Workspace,
    paging: Paging,
    q: Annotated[
        str | None, Query(max_length=200, description="Part of an id, e-mail or name.")
    ] = None,
) -> Page[CustomerSummary]:
    items, total = search_customers(
        ctx.db, ctx.settings, ctx.workspace_id, q, limit=paging.limit, offset=paging.offset
    )
    return Page[CustomerSummary].of(items, total, paging)


@router.get("/{person_id}", response_model=Customer)
def read_customer(ctx: Workspace, person_id: str) -> Customer:
    return get_customer(ctx.db, ctx.settings, ctx.workspace_id, person_id)


@router.get("/{person_id}/timeline", response_model=Page[TimelineItem])
def read_timeline(ctx: Workspace, person_id: str, paging: Paging) -> Page[TimelineItem]:
    items, total = customer_timeline(
        ctx.db,
        ctx.settings,
        ctx.workspace_id,
        person_id,
        limit=paging.limit,
        offset=paging.offset,
    )
    return Page[TimelineItem].of(items, total, paging)


@router.patch("/{person_id}/consent", response_model=Customer)
def patch_consent(ctx: Workspace, person_id: str, body: ConsentPatch) -> Customer:
    changes = {c: getattr(body, c) for c in CONSENT_CHANNELS if c in body.model_fields_set}
    return set_consent(
        ctx.db, ctx.settings, ctx.workspace_id, person_id, changes, now=datetime.now(UTC)
    )
