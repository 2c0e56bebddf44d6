"""What comes back from messages: opens, clicks, unsubscribes, and the providers' webhooks.

    GET  /t/o/{token}.gif                  email open pixel
    GET  /t/c/{token}                      click: records it, redirects to the signed destination
    GET  /u/{token}                        unsubscribe page (a button; link scanners fetch GETs)
    POST /u/{token}                        unsubscribe, one click (RFC 8058) or the page's button
    GET  /webhooks/whatsapp/{workspace}    Meta's subscription handshake (hub.challenge)
    POST /webhooks/whatsapp/{workspace}    statuses and customer messages, X-Hub-Signature-256
    POST /webhooks/twilio/{workspace}      SMS status callbacks and inbound replies, signed

Everything verified becomes a Segment ``track`` message in the tracking inbox
(:meth:`Database.accept`), exactly like an event sent by the store: it lands once (the message
id is derived from what happened), reaches analytics, and wakes ``wait_for`` steps. The pure
parts — token checks, signature checks, parsing, the event each signal becomes — are in
:mod:`wayline.channels`; this module only finds the secrets and the messages referred to.
Forged or expired links answer 404 without recording anything; a spent unsubscribe token 410.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy import insert, or_, select

from wayline.channels import sms, whatsapp
from wayline.channels.base import ChannelKind
from wayline.channels.sms import TwilioSettings
from wayline.channels.tracking import (
    CLICK,
    OPEN,
    PIXEL_GIF,
    UNSUBSCRIBE,
    InvalidToken,
    MessageRef,
    TokenReplayed,
    redeem_unsubscribe,
    tracked_action_events,
    update_events,
    verify_token,
)
from wayline.channels.whatsapp import WhatsAppSettings
from wayline.config import Settings
from wayline.errors import AuthError, NotFound
from wayline.storage.channel_config import ChannelConfigStore
from wayline.storage.db import Database
from wayline.storage.journey_models import OutboxRow
from wayline.storage.models import CustomerProfile
from wayline.storage.secretbox import SecretBox, tracking_secret
from wayline.storage.workspace_models import UsedTokenRow
from wayline.web.render import page

router = APIRouter(include_in_schema=False)

# The smallest transparent GIF: what an open pixel answers, whatever happened.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c000000000100010000020144003b"
)
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


class DbUsedTokens:
    """Spent one-time tokens in the operational store: the first claim wins, on any process."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, token_id: str, expires_at: datetime) -> bool:
        with self.db.write() as conn:
            if conn.execute(
                select(UsedTokenRow.token_id).where(UsedTokenRow.token_id == token_id)
            ).first():
                return False
            conn.execute(insert(UsedTokenRow).values(token_id=token_id, expires_at=expires_at))
        return True


def _state(request: Request) -> tuple[Database, Settings, Callable[[], datetime]]:
    state = request.app.state
    return state.db, state.settings, state.clock


def _record(db: Database, workspace_id: str, messages: list[dict[str, Any]], at: datetime) -> int:
    return db.accept(workspace_id, messages, at) if messages else 0


def _page(
    request: Request, title: str, text: str, status: int = 200, *, unsubscribe_button: bool = False
) -> HTMLResponse:
    """A short page for the customer, in the dashboard's look (no session: no navigation)."""
    response = page(
        request,
        "notice.html",
        None,
        title=title,
        text=text,
        unsubscribe_button=unsubscribe_button,
        status_code=status,
    )
    response.headers.update(NO_STORE)
    return response


# -- links in messages ------------------------------------------------------------------------


@router.get("/t/o/{token}.gif")
async def open_pixel(token: str, request: Request) -> Response:
    db, settings, clock = _state(request)
    now = clock()
    try:
        action = verify_token(token, kind=OPEN, secret=tracking_secret(settings), now=now)
    except InvalidToken:
        # Still an image: a forged or stale pixel records nothing and breaks no e-mail layout.
        return Response(PIXEL_GIF, media_type="image/gif", headers=NO_STORE)
    rows = tracked_action_events(action, at=now, received_at=None)
    await anyio.to_thread.run_sync(_record, db, action.ref.workspace_id, rows, now)
    return Response(PIXEL_GIF, media_type="image/gif", headers=NO_STORE)


@router.get("/t/c/{token}")
async def click(token: str, request: Request) -> Response:
    db, settings, clock = _state(request)
    now = clock()
    try:
        action = verify_token(token, kind=CLICK, secret=tracking_secret(settings), now=now)
    except InvalidToken:
        return _page(request, "This link is not valid", "It may be mistyped or expired.", 404)
    rows = tracked_action_events(action, at=now, received_at=None)
    await anyio.to_thread.run_sync(_record, db, action.ref.workspace_id, rows, now)
    assert action.url is not None  # verify_token guarantees an http(s) destination for clicks
    return RedirectResponse(action.url, status_code=302, headers=NO_STORE)


@router.get("/u/{token}")
async def unsubscribe_page(token: str, request: Request) -> Response:
    _, settings, clock = _state(request)
    try:
        action = verify_token(
            token, kind=UNSUBSCRIBE, secret=tracking_secret(settings), now=clock()
        )
    except InvalidToken:
        return _page(request, "This link is not valid", "It may be mistyped or expired.", 404)
    return _page(
        request,
        "Unsubscribe",
        f"Stop receiving {action.ref.channel.value} messages from this store?",
        unsubscribe_button=True,
    )


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request) -> Response:
    db, settings, clock = _state(request)
    now = clock()
    try:
        action = await anyio.to_thread.run_sync(
            lambda: redeem_unsubscribe(
                token, secret=tracking_secret(settings), now=now, used=DbUsedTokens(db)
            )
        )
    except TokenReplayed:
        return _page(request, "Already unsubscribed", "This link was already used.", 410)
    except InvalidToken:
        return _page(request, "This link is not valid", "It may be mistyped or expired.", 404)
    rows = tracked_action_events(action, at=now, received_at=None)
    await anyio.to_thread.run_sync(_record, db, action.ref.workspace_id, rows, now)
    return _page(request, "You are unsubscribed", "You will not receive these messages any more.")


# -- provider webhooks ------------------------------------------------------------------------


def _provider(request: Request, workspace_id: str, channel: str) -> Any:
    db, settings, _ = _state(request)
    config = ChannelConfigStore(db, SecretBox.for_settings(settings)).settings(
        workspace_id, channel
    )
    if config is None:
        raise NotFound(f"no {channel} provider is configured for this workspace")
    return config


# What :func:`_ref` needs of a sent message's outbox row.
_SENT_REF = (OutboxRow.person_id, OutboxRow.journey_id, OutboxRow.step_id, OutboxRow.payload)


def _find_message(
    db: Database, workspace_id: str
) -> Callable[[ChannelKind, str], MessageRef | None]:
    def find(channel: ChannelKind, provider_message_id: str) -> MessageRef | None:
        # The deliverer keeps the provider's id of a sent message in ``outcome``.
        with db.read() as conn:
            row = conn.execute(
                select(*_SENT_REF)
                .where(
                    OutboxRow.workspace_id == workspace_id,
                    OutboxRow.channel == channel.value,
                    OutboxRow.outcome == provider_message_id,
                )
                .limit(1)
            ).first()
        return None if row is None else _ref(workspace_id, channel, row)

    return find


def _find_customer(
    db: Database, workspace_id: str
) -> Callable[[ChannelKind, str], MessageRef | None]:
    def find(channel: ChannelKind, phone: str) -> MessageRef | None:
        digits = "".join(ch for ch in phone if ch.isdigit())
        with db.read() as conn:
            person = conn.execute(
                select(CustomerProfile.person_id).where(
                    CustomerProfile.workspace_id == workspace_id,
                    or_(CustomerProfile.phone == digits, CustomerProfile.phone == f"+{digits}"),
                )
            ).scalar()
            if person is None:
                return None
            row = conn.execute(
                select(*_SENT_REF)
                .where(
                    OutboxRow.workspace_id == workspace_id,
                    OutboxRow.person_id == person,
                    OutboxRow.channel == channel.value,
                    OutboxRow.status == "sent",
                )
                .order_by(OutboxRow.done_at.desc())
                .limit(1)
            ).first()
        if row is None:
            # A customer who writes first: the reply is theirs, linked to no message.
            return MessageRef("", workspace_id, str(person), channel)
        return _ref(workspace_id, channel, row)

    return find


def _ref(workspace_id: str, channel: ChannelKind, row: Any) -> MessageRef:
    payload: Mapping[str, Any] = orjson.loads(row.payload)
    return MessageRef(
        message_id=str(payload.get("message_id", "")),
        workspace_id=workspace_id,
        customer_id=str(row.person_id),
        channel=channel,
        journey_id=row.journey_id,
        step_id=row.step_id,
    )


@router.get("/webhooks/whatsapp/{workspace_id}")
async def whatsapp_handshake(workspace_id: str, request: Request) -> Response:
    config: WhatsAppSettings = await anyio.to_thread.run_sync(
        _provider, request, workspace_id, "whatsapp"
    )
    if not config.verify_token:
        raise AuthError("no WhatsApp verify token is configured for this workspace")
    params = dict(request.query_params)
    challenge = whatsapp.verify_subscription(params, verify_token=config.verify_token)
    return PlainTextResponse(challenge)


@router.post("/webhooks/whatsapp/{workspace_id}")
async def whatsapp_webhook(workspace_id: str, request: Request) -> Response:
    db, _, clock = _state(request)
    body = await request.body()
    config: WhatsAppSettings = await anyio.to_thread.run_sync(
        _provider, request, workspace_id, "whatsapp"
    )
    if not config.app_secret:
        raise AuthError("no WhatsApp app secret is configured for this workspace")
    # Check the signature on the raw bytes before parsing anything.
    whatsapp.verify_signature(
        body, request.headers.get("x-hub-signature-256"), app_secret=config.app_secret
    )
    updates = whatsapp.parse_webhook(body)

    def record() -> int:
        messages = update_events(
            updates,
            find_message=_find_message(db, workspace_id),
            find_customer=_find_customer(db, workspace_id),
            received_at=None,
        )
        return _record(db, workspace_id, messages, clock())

    await anyio.to_thread.run_sync(record)
    return Response(status_code=200)


@router.post("/webhooks/twilio/{workspace_id}")
async def twilio_webhook(workspace_id: str, request: Request) -> Response:
    db, _, clock = _state(request)
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    config: TwilioSettings = await anyio.to_thread.run_sync(_provider, request, workspace_id, "sms")
    # Twilio signs the URL it was configured with; behind a proxy that is the public one.
    url = config.status_callback_url or str(request.url)
    sms.verify_signature(
        url, params, request.headers.get("x-twilio-signature"), auth_token=config.auth_token
    )
    now = clock()
    update = sms.parse_callback(params, received_at=now)

    def record() -> int:
        messages = update_events(
            [update] if update is not None else [],
            find_message=_find_message(db, workspace_id),
            find_customer=_find_customer(db, workspace_id),
            received_at=None,
        )
        return _record(db, workspace_id, messages, now)

    await anyio.to_thread.run_sync(record)
    # An empty TwiML answer: no automatic reply to the customer.
    return Response("<Response/>", media_type="application/xml")
