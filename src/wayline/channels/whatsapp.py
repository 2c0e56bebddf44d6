"""WhatsApp through Meta's Cloud API: template and session messages out, webhooks in.

Out: ``POST {base_url}/{version}/{phone_number_id}/messages`` with a bearer token and a JSON
body — ``type: template`` (approved name, language code, body parameters as components) outside
the 24-hour customer-service window, ``type: text`` inside it. The response names the message
(``messages[0].id``, a ``wamid.…``) that later status webhooks refer to.

In (pure functions the API mounts):

- the subscription handshake: a GET with ``hub.mode=subscribe``, ``hub.verify_token`` and
  ``hub.challenge``; we answer the challenge only when the verify token is ours;
- notifications: a POST signed with ``X-Hub-Signature-256: sha256=<HMAC-SHA256(app secret,
  raw body)>``; its ``entry[].changes[].value`` holds ``statuses`` (sent, delivered, read,
  failed) and ``messages`` (what customers wrote).

Errors: Graph API errors carry a numeric ``code``; rate limits and Meta's transient failures
are retryable, the rest (an unregistered number, a template that does not exist, an expired
token, a closed 24-hour window) are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from wayline.channels._http import call_provider, json_or_empty
from wayline.channels.base import (
    AttemptLog,
    ChannelKind,
    Clock,
    DeliveryStatus,
    InboundReply,
    OutboundMessage,
    Outcome,
    ProviderResponse,
    ProviderUpdate,
    SendResult,
    TextContent,
    WhatsAppTemplateContent,
    attempt_once,
    classify_status,
    parse_retry_after,
)
from wayline.errors import AuthError, InputError

#: Graph API error codes worth retrying: throttling and Meta's own transient failures.
RETRYABLE_CODES = frozenset({1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056, 133004})


@dataclass(frozen=True)
class WhatsAppSettings:
    phone_number_id: str
    access_token: str
    base_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    timeout_seconds: float = 10.0
    app_secret: str | None = None
    """Signs the status and reply webhooks Meta sends (``X-Hub-Signature-256``)."""
    verify_token: str | None = None
    """Chosen by the store when subscribing the webhook; Meta echoes it in the handshake."""


def build_request_body(message: OutboundMessage) -> dict[str, Any]:
    """The Cloud API JSON body for ``message`` (a template or a session text)."""
    to = message.to.lstrip("+")
    content = message.content
    if isinstance(content, WhatsAppTemplateContent):
        components: list[dict[str, Any]] = []
        if content.header_parameters:
            components.append(
                {
                    "type": "header",
                    "parameters": [{"type": "text", "text": p} for p in content.header_parameters],
                }
            )
        if content.parameters:
            components.append(
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": p} for p in content.parameters],
                }
            )
        template: dict[str, Any] = {"name": content.name, "language": {"code": content.language}}
        if components:
            template["components"] = components
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": template,
        }
    if isinstance(content, TextContent):
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": True, "body": content.body},
        }
    raise InputError(
        f"a WhatsApp message needs a template or a text, not {type(content).__name__}",
        field="content",
    )


def interpret_response(response: httpx.Response) -> ProviderResponse:
    """A Cloud API response as an outcome (see the module docstring for the classification)."""
    body = json_or_empty(response)
    if 200 <= response.status_code < 300:
        messages = body.get("messages")
        wamid = None
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
        return ProviderResponse(
            Outcome.DELIVERED,
            status_code=response.status_code,
            provider_message_id=str(wamid) if wamid else None,
        )
    error = body.get("error")
    code: int | None = None
    detail = response.text[:300]
    if isinstance(error, dict):
        raw = error.get("code")
        code = raw if isinstance(raw, int) else None
        detail = str(error.get("message") or detail)
    outcome = classify_status(response.status_code)
    if code in RETRYABLE_CODES:
        outcome = Outcome.RETRYABLE
    return ProviderResponse(
        outcome,
        status_code=response.status_code,
        error_code=str(code) if code is not None else f"http_{response.status_code}",
        detail=detail,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


class WhatsAppChannel:
    """Sends through the Cloud API with an injected ``httpx.AsyncClient``."""

    kind = ChannelKind.WHATSAPP

    def __init__(
        self,
        settings: WhatsAppSettings,
        *,
        client: httpx.AsyncClient,
        log: AttemptLog,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._client = client
        self._log = log
        self._clock = clock

    @property
    def url(self) -> str:
        s = self._settings
        return f"{s.base_url.rstrip('/')}/{s.api_version}/{s.phone_number_id}/messages"

    async def send(self, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        body = build_request_body(message)

        async def request() -> httpx.Response:
            return await self._client.post(
                self.url,
                json=body,
                headers={"Authorization": f"Bearer {self._settings.access_token}"},
                timeout=self._settings.timeout_seconds,
            )

        return await attempt_once(
            key=idempotency_key,
            log=self._log,
            clock=self._clock,
            call=lambda: call_provider(request, interpret_response),
        )


# --- webhooks (pure) -------------------------------------------------------------------------


def verify_subscription(params: Mapping[str, str], *, verify_token: str) -> str:
    """The ``hub.challenge`` to echo back, when the handshake carries our verify token."""
    if params.get("hub.mode") != "subscribe":
        raise AuthError("not a WhatsApp subscription request (hub.mode is not 'subscribe')")
    given = params.get("hub.verify_token", "")
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        raise AuthError("WhatsApp verify token does not match")
    challenge = params.get("hub.challenge")
    if not challenge:
        raise AuthError("WhatsApp subscription request without hub.challenge")
    return challenge


def signature_header(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body`` (used by tests and fakes)."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, *, app_secret: str) -> None:
    """Raise :class:`AuthError` unless ``header`` signs the raw ``body`` with the app secret."""
    if not header or not header.startswith("sha256="):
        raise AuthError("missing or malformed X-Hub-Signature-256 header")
    if not hmac.compare_digest(header.encode(), signature_header(body, app_secret).encode()):
        raise AuthError("X-Hub-Signature-256 does not match the body")


def _at(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError):
        raise InputError(f"not a Unix timestamp: {value!r}", field="timestamp") from None


def _reply_text(msg: Mapping[str, Any]) -> str:
    """The text of an inbound message of any type: text, a quick-reply button, a list pick."""
    mtype = msg.get("type")
    part = msg.get(str(mtype)) if mtype else None
    if not isinstance(part, Mapping):
        return ""
    if mtype == "text":
        return str(part.get("body", ""))
    if mtype == "button":
        return str(part.get("text", ""))
    if mtype == "interactive":
        for kind in ("button_reply", "list_reply"):
            reply = part.get(kind)
            if isinstance(reply, Mapping):
                return str(reply.get("title", ""))
    if mtype in ("image", "video", "document"):
        return str(part.get("caption", ""))
    return ""


def parse_webhook(body: bytes) -> list[ProviderUpdate]:
    """Statuses and customer messages in a verified notification body, in order.

    Call :func:`verify_signature` first: this function trusts its input's origin, not its shape.
    """
    try:
        doc = json.loads(body)
    except ValueError:
        raise InputError("WhatsApp webhook body is not JSON") from None
    if not isinstance(doc, dict) or doc.get("object") != "whatsapp_business_account":
        raise InputError("not a WhatsApp Business Account notification", field="object")
    try:
        return _updates(doc)
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"malformed WhatsApp notification: {exc!r}", field="entry") from None


def _updates(doc: Mapping[str, Any]) -> list[ProviderUpdate]:
    updates: list[ProviderUpdate] = []
    for entry in doc.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value") or {}
            for st in value.get("statuses") or []:
                errors = st.get("errors") or []
                first = errors[0] if errors and isinstance(errors[0], Mapping) else {}
                updates.append(
                    DeliveryStatus(
                        channel=ChannelKind.WHATSAPP,
                        provider_message_id=str(st["id"]),
                        status=str(st["status"]),
                        at=_at(st.get("timestamp")),
                        recipient=st.get("recipient_id"),
                        error_code=str(first["code"]) if "code" in first else None,
                        error_detail=first.get("title") or first.get("message"),
                    )
                )
            for msg in value.get("messages") or []:
                context = msg.get("context") or {}
                updates.append(
                    InboundReply(
                        channel=ChannelKind.WHATSAPP,
                        provider_message_id=str(msg["id"]),
                        sender="+" + str(msg["from"]).lstrip("+"),
                        text=_reply_text(msg),
                        at=_at(msg.get("timestamp")),
                        in_reply_to=context.get("id") if isinstance(context, Mapping) else None,
                    )
                )
    return updates
