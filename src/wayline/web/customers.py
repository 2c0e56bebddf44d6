"""Dashboard pages for customers: search (``/customers``) and one customer's profile, consent
and timeline of events and messages (``/customers/{person_id}``).

They call the REST API's functions (:mod:`wayline.api.rest.customers`) with the session's
workspace; consent is a plain form, so the page works without scripts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from wayline.api.rest import customers as api
from wayline.config import Settings
from wayline.storage.db import Database
from wayline.web.auth import Session, check_csrf
from wayline.web.render import page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
#: Consent form values → what is stored (None: forget, i.e. unknown).
_CONSENT_VALUES: dict[str, bool | None] = {"yes": True, "no": False, "unknown": None}


def _stores(request: Request) -> tuple[Database, Settings]:
    return request.app.state.db, request.app.state.settings


@router.get("/customers")
def customers_page(
    request: Request,
    session: Session,
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    found, total = api.search_customers(
        request.app.state, session.workspace_id, q, limit=PAGE_SIZE, offset=offset
    )
    return page(
        request,
        "customers_list.html",
        session,
        title="Customers",
        q=q,
        customers=found,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
    )


@router.get("/customers/{person_id}")
def customer_page(
    request: Request,
    session: Session,
    person_id: str,
    offset: Annotated[int, Query(ge=0)] = 0,
    saved: bool = False,
) -> Response:
    db, settings = _stores(request)
    customer, timeline, total = api.customer_timeline(
        db, settings, session.workspace_id, person_id, limit=PAGE_SIZE, offset=offset
    )
    return page(
        request,
        "customers_detail.html",
        session,
        title=customer.name or customer.email or person_id,
        customer=customer,
        timeline=timeline,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        channels=api.CONSENT_CHANNELS,
        saved=saved,
        quoted_id=quote(person_id, safe=""),
    )


@router.post("/customers/{person_id}/consent")
async def consent_form(request: Request, session: Session, person_id: str) -> Response:
    await check_csrf(request, session)
    form = await request.form()
    changes: dict[str, bool | None] = {}
    for channel in api.CONSENT_CHANNELS:
        value = form.get(channel)
        if isinstance(value, str) and value in _CONSENT_VALUES:
            changes[channel] = _CONSENT_VALUES[value]
    db, settings = _stores(request)
    api.set_consent(db, settings, session.workspace_id, person_id, changes, now=datetime.now(UTC))
    return RedirectResponse(f"/customers/{quote(person_id, safe='')}?saved=true", status_code=303)
