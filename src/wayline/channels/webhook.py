"""Webhook: POST a signed JSON payload to a store's own URL.

The body is the payload wrapped with who and what it is about::

    {"id": <message id>, "type": "journey.webhook", "workspace_id": …, "customer_id": …,
     "journey_id": …, "step_id": …, "data": <the step's payload>}

and it is signed the way Stripe signs its webhooks, so the store can check it is ours and fresh:
``Wayline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``. The
``Idempotency-Key`` header repeats on every retry, so a store can drop duplicates.

A 2xx is delivered; a timeout, a connection failure, 408/429/5xx are retryable (retry with
:func:`wayline.channels.retry.send_with_retries` or the runtime's timers); other 4xx permanent.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlparse

import httpx
import orjson

from wayline.channels._http import call_provider
from wayline.channels.base import (
    AttemptLog,
    ChannelKind,
    Clock,
    OutboundMessage,
    Outcome,
    ProviderResponse,
    SendResult,
    WebhookContent,
    attempt_once,
    classify_status,
    parse_retry_after,
)
from wayline.errors import AuthError, InputError

SIGNATURE_HEADER = "Wayline-Signature"


@dataclass(frozen=True)
class WebhookSettings:
    secret: str
    timeout_seconds: float = 10.0


def sign(body: bytes, *, secret: str, timestamp: int) -> str:
    """The ``Wayline-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    body: bytes,
    header: str | None,
    *,
    secret: str,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> None:
    """What a receiving store does: raise :class:`AuthError` unless signed by us, recently."""
    if not header:
        raise AuthError(f"missing {SIGNATURE_HEADER} header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise AuthError(f"malformed {SIGNATURE_HEADER} header") from None
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        raise AuthError("webhook signature timestamp is outside the tolerance")
    expected = sign(body, secret=secret, timestamp=timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError("webhook signature does not match the body")


def build_body(message: OutboundMessage) -> bytes:
    if not isinstance(message.content, WebhookContent):
        raise InputError("a webhook needs a JSON payload", field="content")
    envelope = {
        "id": message.message_id,
        "type": "journey.webhook",
        "workspace_id": message.workspace_id,
        "customer_id": message.customer_id,
        "journey_id": message.journey_id,
        "step_id": message.step_id,
        "data": dict(message.content.payload),
    }
    # orjson: Decimal is not JSON-native; the default below keeps money exact as a string.
    return orjson.dumps(envelope, default=str)


def interpret_response(response: httpx.Response) -> ProviderResponse:
    outcome = classify_status(response.status_code)
    return ProviderResponse(
        outcome,
        status_code=response.status_code,
        error_code=None if outcome is Outcome.DELIVERED else f"http_{response.status_code}",
        detail=response.text[:300],
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


class WebhookChannel:
    kind = ChannelKind.WEBHOOK

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        client: httpx.AsyncClient,
        log: AttemptLog,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._client = client
        self._log = log
        self._clock = clock

    async def send(self, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        if urlparse(message.to).scheme not in ("http", "https"):
            raise InputError(f"webhook URL must be http(s): {message.to!r}", field="to")
        body = build_body(message)

        async def request() -> httpx.Response:
            # Signed per attempt: the timestamp is when this attempt left, so a store's
            # freshness check holds for retries too.
            ts = int(self._clock().timestamp())
            return await self._client.post(
                message.to,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(body, secret=self._settings.secret, timestamp=ts),
                    "Idempotency-Key": idempotency_key,
                    "User-Agent": "Wayline-Webhook/1",
                },
                timeout=self._settings.timeout_seconds,
            )

        return await attempt_once(
            key=idempotency_key,
            log=self._log,
            clock=self._clock,
            call=lambda: call_provider(request, interpret_response),
        )
