"""Opens, clicks and unsubscribes: signed links out, verified events back.

Every tracking URL carries a token: ``base64url(claims) "." base64url(HMAC-SHA256(secret,
"wayline-track-v1." + base64url(claims)))``, where ``secret`` is the workspace's and the claims
name the kind (open, click, unsubscribe), the workspace, the customer, the message, the
destination URL (clicks) and an expiry. So:

- a click link cannot be turned into an open redirect: the destination is inside the signed
  claims, not a free query parameter;
- a link cannot be forged for another customer or message: changing a claim breaks the MAC;
- an unsubscribe token is spent once: :func:`redeem_unsubscribe` claims its id in a
  caller-supplied :class:`UsedTokens` store and refuses a second use (a replay).

The second half turns verified signals — a pixel load, a click, an unsubscribe, a provider's
status webhook, a customer's reply — into event rows of :mod:`wayline.events.schema`'s shape
(``email_opened``, ``email_clicked``, ``unsubscribed``, ``whatsapp_delivered``,
``whatsapp_read``, ``whatsapp_reply``, ``sms_delivered``, ``sms_reply``, ``message_failed``…),
each linked to the message by ``properties.message_id`` so ``wait_for`` steps and goal
attribution can find it. The event's ``messageId`` is derived from what happened, so a webhook
delivered twice yields the same row (deduplicated downstream). All pure: the caller passes
``now`` and does the lookups.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlparse

import orjson

from wayline.channels.base import (
    ChannelKind,
    DeliveryStatus,
    InboundReply,
    Outcome,
    ProviderUpdate,
    SendResult,
)
from wayline.channels.sms import is_opt_in, is_opt_out
from wayline.errors import AuthError
from wayline.events.engagement import FAILED_EVENT, UNSUBSCRIBED_EVENT, engagement_event
from wayline.events.normalize import normalize

OPEN, CLICK, UNSUBSCRIBE = "o", "c", "u"
_KINDS = {OPEN: "open", CLICK: "click", UNSUBSCRIBE: "unsubscribe"}
_DOMAIN = b"wayline-track-v1."

#: A transparent 1×1 GIF, the body of the open pixel's response.
PIXEL_GIF = base64.b64decode(b"R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


class InvalidToken(AuthError):
    """A tracking token that is malformed, forged, of the wrong kind, or expired."""


class TokenReplayed(InvalidToken):
    """An unsubscribe token presented a second time."""


class UsedTokens(Protocol):
    """Remembers spent one-time tokens until they expire (a table, a Redis set…)."""

    def claim(self, token_id: str, expires_at: datetime) -> bool:
        """Mark ``token_id`` used; ``False`` when it already was."""
        ...


class InMemoryUsedTokens:
    def __init__(self) -> None:
        self._used: dict[str, datetime] = {}

    def claim(self, token_id: str, expires_at: datetime) -> bool:
        if token_id in self._used:
            return False
        self._used[token_id] = expires_at
        return True


@dataclass(frozen=True)
class MessageRef:
    """A message we sent, as tracking and webhooks need to know it."""

    message_id: str
    workspace_id: str
    customer_id: str
    channel: ChannelKind
    journey_id: str | None = None
    step_id: str | None = None


@dataclass(frozen=True)
class TrackedAction:
    """What a verified token says happened."""

    kind: str
    """``open``, ``click`` or ``unsubscribe``."""
    ref: MessageRef
    url: str | None
    token_id: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), _DOMAIN + body.encode(), hashlib.sha256).digest())


def make_token(
    kind: str, ref: MessageRef, *, secret: str, expires_at: datetime, url: str | None = None
) -> str:
    """A signed token of ``kind`` (``OPEN``, ``CLICK``, ``UNSUBSCRIBE``) for ``ref``."""
    if kind not in _KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    claims: dict[str, Any] = {
        "k": kind,
        "w": ref.workspace_id,
        "c": ref.customer_id,
        "m": ref.message_id,
        "ch": ref.channel.value,
        "e": int(expires_at.timestamp()),
    }
    if ref.journey_id:
        claims["j"] = ref.journey_id
    if ref.step_id:
        claims["s"] = ref.step_id
    if url is not None:
        claims["u"] = url
    body = _b64(orjson.dumps(claims))
    return f"{body}.{_mac(secret, body)}"


def token_workspace(token: str) -> str | None:
    """The workspace a token *claims*, unverified: only to pick the secret to verify it with."""
    body = token.partition(".")[0]
    try:
        claims = orjson.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    workspace = claims.get("w") if isinstance(claims, dict) else None
    return workspace if isinstance(workspace, str) else None


def verify_token(token: str, *, kind: str, secret: str, now: datetime) -> TrackedAction:
    """The action a token stands for; :class:`InvalidToken` unless genuine, of ``kind``, live."""
    body, _, mac = token.partition(".")
    if not body or not mac:
        raise InvalidToken("malformed tracking token")
    # Compare MACs before reading the claims: nothing unauthenticated is parsed further.
    if not hmac.compare_digest(mac.encode(), _mac(secret, body).encode()):
        raise InvalidToken("tracking token signature does not match")
    try:
        claims = orjson.loads(_unb64(body))
        ref = MessageRef(
            message_id=str(claims["m"]),
            workspace_id=str(claims["w"]),
            customer_id=str(claims["c"]),
            channel=ChannelKind(claims["ch"]),
            journey_id=claims.get("j"),
            step_id=claims.get("s"),
        )
        expires_at = datetime.fromtimestamp(int(claims["e"]), tz=UTC)
        token_kind = claims["k"]
    except (ValueError, KeyError, TypeError):
        raise InvalidToken("malformed tracking token claims") from None
    if token_kind != kind:
        found = _KINDS.get(token_kind, "unknown")
        raise InvalidToken(f"wrong kind of tracking token: {found}, expected {_KINDS[kind]}")
    if now >= expires_at:
        raise InvalidToken("tracking token has expired")
    url = claims.get("u")
    if kind == CLICK and not _is_web_url(url):
        raise InvalidToken("click token without an http(s) destination")
    token_id = hashlib.sha256(mac.encode()).hexdigest()[:32]
    return TrackedAction(_KINDS[kind], ref, url, token_id, expires_at)


def redeem_unsubscribe(
    token: str, *, secret: str, now: datetime, used: UsedTokens
) -> TrackedAction:
    """Verify an unsubscribe token and spend it; a second use raises :class:`TokenReplayed`.

    Call it on the one-click POST only: link scanners fetch GETs, and must not unsubscribe.
    """
    action = verify_token(token, kind=UNSUBSCRIBE, secret=secret, now=now)
    if not used.claim(action.token_id, action.expires_at):
        raise TokenReplayed("this unsubscribe link was already used")
    return action


def _is_web_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


@dataclass(frozen=True)
class LinkSigner:
    """Makes the tracking URLs of one workspace: ``{base_url}/t/o/…``, ``/t/c/…``, ``/u/…``."""

    base_url: str
    secret: str
    link_ttl: timedelta = timedelta(days=365)
    unsubscribe_ttl: timedelta = timedelta(days=90)

    def open_url(self, ref: MessageRef, *, now: datetime) -> str:
        token = make_token(OPEN, ref, secret=self.secret, expires_at=now + self.link_ttl)
        return f"{self.base_url.rstrip('/')}/t/o/{token}.gif"

    def click_url(self, ref: MessageRef, url: str, *, now: datetime) -> str:
        token = make_token(CLICK, ref, secret=self.secret, expires_at=now + self.link_ttl, url=url)
        return f"{self.base_url.rstrip('/')}/t/c/{token}"

    def unsubscribe_url(self, ref: MessageRef, *, now: datetime) -> str:
        expires = now + self.unsubscribe_ttl
        token = make_token(UNSUBSCRIBE, ref, secret=self.secret, expires_at=expires)
        return f"{self.base_url.rstrip('/')}/u/{token}"


_HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")', re.IGNORECASE)


def track_html(
    body: str,
    *,
    signer: LinkSigner,
    ref: MessageRef,
    now: datetime,
    skip: Iterable[str] = (),
) -> str:
    """Rewrite every http(s) link of an email through the click tracker and add the pixel.

    Expects serialized HTML with double-quoted attributes (what the CSS inliner writes).
    Links in ``skip`` (the unsubscribe link) and non-web links (mailto:, tel:, #) are left alone.
    """
    untouched = set(skip)

    def rewrite(m: re.Match[str]) -> str:
        target = html.unescape(m.group(2))
        if target in untouched or not _is_web_url(target):
            return m.group(0)
        tracked = signer.click_url(ref, target, now=now)
        return m.group(1) + html.escape(tracked, quote=True) + m.group(3)

    tracked_body = _HREF.sub(rewrite, body)
    pixel = (
        f'<img src="{html.escape(signer.open_url(ref, now=now))}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    close = tracked_body.lower().rfind("</body>")
    if close == -1:
        return tracked_body + pixel
    return tracked_body[:close] + pixel + tracked_body[close:]


# --- events ----------------------------------------------------------------------------------

EVENT_SOURCE = "channels"

#: (channel, what happened) → the event name on the timeline. One table, so that the names
#: ``wait_for`` steps listen for are decided in one place.
#: (channel, action) → the event stored on the customer's timeline; one vocabulary shared with
#: the journeys that wait for these events (:mod:`wayline.events.engagement`).
EVENT_NAMES: dict[tuple[str, str], str] = {
    (channel, action): engagement_event(channel, action)
    for channel, action in (
        ("email", "delivered"),
        ("email", "opened"),
        ("email", "clicked"),
        ("whatsapp", "sent"),
        ("whatsapp", "delivered"),
        ("whatsapp", "read"),
        ("whatsapp", "replied"),
        ("sms", "sent"),
        ("sms", "delivered"),
        ("sms", "read"),
        ("sms", "replied"),
    )
}
SUBSCRIBED_EVENT = "subscribed"


def event_row(
    name: str,
    ref: MessageRef,
    *,
    at: datetime,
    received_at: datetime | None,
    dedupe_key: str,
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An event on ``ref``'s customer, linked to the message.

    With ``received_at``, a normalized row (``EVENT_COLUMNS``); with ``None``, the Segment
    ``track`` message it comes from — what the HTTP endpoints put in the tracking inbox, so the
    event reaches analytics and the journey runtime (``wait_for``) like any tracked event.
    """
    props: dict[str, Any] = {"message_id": ref.message_id, "channel": ref.channel.value}
    if ref.journey_id:
        props["journey"] = ref.journey_id
    if ref.step_id:
        props["step"] = ref.step_id
    props.update(properties or {})
    message_id = hashlib.sha256(f"{name}\x1f{dedupe_key}".encode()).hexdigest()[:32]
    channel_utm = {"source": ref.channel.value, "medium": ref.channel.value}
    message = {
        "type": "track",
        "event": name,
        "userId": ref.customer_id,
        "messageId": f"wl-{message_id}",
        "timestamp": at,
        "properties": props,
        "context": {"campaign": channel_utm},
    }
    if received_at is None:
        return message
    return normalize(
        message, workspace_id=ref.workspace_id, received_at=received_at, source=EVENT_SOURCE
    )


def tracked_action_events(
    action: TrackedAction, *, at: datetime, received_at: datetime | None
) -> list[dict[str, Any]]:
    """``email_opened`` / ``email_clicked`` / ``unsubscribed`` for a verified token (rows,
    or Segment messages when ``received_at`` is ``None``: see :func:`event_row`)."""
    ref = action.ref
    if action.kind == "open":
        # One opened event per message and minute: image proxies refetch pixels in bursts.
        key = f"{ref.message_id}:{int(at.timestamp()) // 60}"
        return [
            event_row(
                EVENT_NAMES["email", "opened"], ref, at=at, received_at=received_at, dedupe_key=key
            )
        ]
    if action.kind == "click":
        key = f"{ref.message_id}:{action.url}:{int(at.timestamp())}"
        props = {"url": action.url}
        return [
            event_row(
                EVENT_NAMES["email", "clicked"],
                ref,
                at=at,
                received_at=received_at,
                dedupe_key=key,
                properties=props,
            )
        ]
    return [
        event_row(
            UNSUBSCRIBED_EVENT,
            ref,
            at=at,
            received_at=received_at,
            dedupe_key=action.token_id,
            properties={"method": "one_click"},
        )
    ]


def send_events(
    ref: MessageRef, result: SendResult, *, at: datetime, received_at: datetime
) -> list[dict[str, Any]]:
    """Events for a send's final outcome, for the runtime to record with the attempt.

    An email accepted by the SMTP server is ``email_delivered`` (SMTP gives no later receipt);
    WhatsApp and SMS deliveries are reported by their webhooks instead. A permanent failure is
    ``message_failed`` on every channel; a retryable one is not final and gives no event.
    """
    if result.replayed:
        return []
    key = result.idempotency_key
    if result.outcome is Outcome.PERMANENT:
        props = {"error_code": result.error_code, "error": result.detail}
        return [
            event_row(
                FAILED_EVENT,
                ref,
                at=at,
                received_at=received_at,
                dedupe_key=key,
                properties=props,
            )
        ]
    if result.outcome is Outcome.DELIVERED and ref.channel is ChannelKind.EMAIL:
        return [
            event_row(
                EVENT_NAMES["email", "delivered"],
                ref,
                at=at,
                received_at=received_at,
                dedupe_key=key,
            )
        ]
    return []


def update_events(
    updates: Iterable[ProviderUpdate],
    *,
    find_message: Callable[[ChannelKind, str], MessageRef | None],
    find_customer: Callable[[ChannelKind, str], MessageRef | None],
    received_at: datetime | None,
) -> list[dict[str, Any]]:
    """Event rows for verified provider updates (statuses, replies); Segment messages when
    ``received_at`` is ``None`` (see :func:`event_row`).

    ``find_message(channel, provider_message_id)`` finds a message we sent;
    ``find_customer(channel, phone)`` finds the customer a reply comes from, as a reference to
    their latest message on that channel (so the reply is linked to it). Updates about unknown
    messages or numbers give no row: there is no customer to put them on.
    """
    rows: list[dict[str, Any]] = []
    for update in updates:
        if isinstance(update, DeliveryStatus):
            ref = find_message(update.channel, update.provider_message_id)
            if ref is None:
                continue
            key = f"{update.provider_message_id}:{update.status}"
            if update.status == "failed":
                props = {"error_code": update.error_code, "error": update.error_detail}
                name = FAILED_EVENT
            else:
                props = {"provider_message_id": update.provider_message_id}
                name = EVENT_NAMES.get(
                    (update.channel.value, update.status), f"{update.channel.value}_{update.status}"
                )
            rows.append(
                event_row(
                    name,
                    ref,
                    at=update.at,
                    received_at=received_at,
                    dedupe_key=key,
                    properties=props,
                )
            )
        elif isinstance(update, InboundReply):
            ref = None
            if update.in_reply_to:
                ref = find_message(update.channel, update.in_reply_to)
            ref = ref or find_customer(update.channel, update.sender)
            if ref is None:
                continue
            rows.append(
                event_row(
                    EVENT_NAMES[update.channel.value, "replied"],
                    ref,
                    at=update.at,
                    received_at=received_at,
                    dedupe_key=update.provider_message_id,
                    properties={"text": update.text, "from": update.sender},
                )
            )
            if is_opt_out(update.text):
                # STOP revokes consent on the channel it was sent on (carrier rules for SMS;
                # what WhatsApp users expect too).
                rows.append(
                    event_row(
                        UNSUBSCRIBED_EVENT,
                        ref,
                        at=update.at,
                        received_at=received_at,
                        dedupe_key=update.provider_message_id,
                        properties={"method": "keyword", "keyword": update.text.strip()},
                    )
                )
            elif is_opt_in(update.text):
                rows.append(
                    event_row(
                        SUBSCRIBED_EVENT,
                        ref,
                        at=update.at,
                        received_at=received_at,
                        dedupe_key=update.provider_message_id,
                        properties={"method": "keyword", "keyword": update.text.strip()},
                    )
                )
    return rows


def consent_traits(row: Mapping[str, Any]) -> dict[str, bool] | None:
    """The profile change an event row implies for consent, if any.

    ``unsubscribed`` on a channel → ``{"<channel>_unsubscribed": True}``; ``subscribed`` (a
    START reply) → ``False``. The send-time policies read these traits
    (:mod:`wayline.journeys.policies`).
    """
    props = row.get("properties") or {}
    channel = props.get("channel") if isinstance(props, Mapping) else None
    if not channel:
        return None
    if row.get("event") == UNSUBSCRIBED_EVENT:
        return {f"{channel}_unsubscribed": True}
    if row.get("event") == SUBSCRIBED_EVENT:
        return {f"{channel}_unsubscribed": False}
    return None
