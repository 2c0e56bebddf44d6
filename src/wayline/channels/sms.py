"""SMS through Twilio's Messages API: messages out, status callbacks and replies in.

Out: ``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP basic auth
(Account SID, Auth Token), form-encoded ``To``, ``From`` (or ``MessagingServiceSid``), ``Body``
and ``StatusCallback``. A 201 names the message (``sid``, ``SM…``) that status callbacks refer
to. Errors are JSON ``{code, message, more_info, status}``; 429 (code 20429) and 5xx are
retryable, the rest — an invalid ``To`` (21211), a number that replied STOP (21610), a landline
(21614) — permanent.

In: Twilio POSTs form-encoded callbacks signed with ``X-Twilio-Signature``: base64 of
HMAC-SHA1 (key: the Auth Token) over the full callback URL followed by every POST parameter,
sorted by name, as name+value with no separators. Status callbacks carry ``MessageSid`` and
``MessageStatus`` (queued … sent, delivered, undelivered, failed); inbound messages carry
``From`` and ``Body``. A reply that is an opt-out keyword (STOP, UNSUBSCRIBE …, as carriers and
Twilio define them) revokes SMS consent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

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
    SendResult,
    TextContent,
    attempt_once,
    classify_status,
    parse_retry_after,
)
from wayline.errors import AuthError, InputError

#: Whole-message keywords that opt a number out (Twilio's defaults, US carrier rules).
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})

#: Twilio statuses worth an event; the in-flight ones (queued, sending…) are not.
_STATUS_MAP = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
}


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback_url: str | None = None
    base_url: str = "https://api.twilio.com"
    timeout_seconds: float = 10.0


def build_form(message: OutboundMessage, settings: TwilioSettings) -> dict[str, str]:
    """The form fields of a Messages API create call for ``message``."""
    if not isinstance(message.content, TextContent):
        raise InputError("an SMS needs a text body", field="content")
    form = {"To": message.to, "Body": message.content.body}
    if settings.messaging_service_sid:
        form["MessagingServiceSid"] = settings.messaging_service_sid
    elif settings.from_number:
        form["From"] = settings.from_number
    else:
        raise InputError("Twilio needs a from number or a messaging service SID", field="from")
    if settings.status_callback_url:
        form["StatusCallback"] = settings.status_callback_url
    return form


def interpret_response(response: httpx.Response) -> ProviderResponse:
    body = json_or_empty(response)
    outcome = classify_status(response.status_code)
    if outcome is Outcome.DELIVERED:
        sid = body.get("sid")
        return ProviderResponse(
            outcome, status_code=response.status_code, provider_message_id=str(sid) if sid else None
        )
    code = body.get("code")
    return ProviderResponse(
        outcome,
        status_code=response.status_code,
        error_code=str(code) if code is not None else f"http_{response.status_code}",
        detail=str(body.get("message") or response.text[:300]),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


class SmsChannel:
    """Sends through Twilio with an injected ``httpx.AsyncClient``."""

    kind = ChannelKind.SMS

    def __init__(
        self,
        settings: TwilioSettings,
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
        return f"{s.base_url.rstrip('/')}/2010-04-01/Accounts/{s.account_sid}/Messages.json"

    async def send(self, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        form = build_form(message, self._settings)

        async def request() -> httpx.Response:
            return await self._client.post(
                self.url,
                data=form,
                auth=(self._settings.account_sid, self._settings.auth_token),
                timeout=self._settings.timeout_seconds,
            )

        return await attempt_once(
            key=idempotency_key,
            log=self._log,
            clock=self._clock,
            call=lambda: call_provider(request, interpret_response),
        )


# --- callbacks (pure) ------------------------------------------------------------------------


def signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The ``X-Twilio-Signature`` Twilio computes for a POST of ``params`` to ``url``."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_signature(
    url: str, params: Mapping[str, str], header: str | None, *, auth_token: str
) -> None:
    """Raise :class:`AuthError` unless ``header`` is Twilio's signature of this request.

    ``url`` must be the URL exactly as configured in Twilio (scheme, host, port, query).
    """
    if not header:
        raise AuthError("missing X-Twilio-Signature header")
    expected = signature(url, params, auth_token)
    if not hmac.compare_digest(header.encode(), expected.encode()):
        raise AuthError("X-Twilio-Signature does not match the request")


def keyword(text: str) -> str:
    """The message as a keyword: trimmed, upper case, trailing punctuation dropped."""
    return text.strip().rstrip(".!").strip().upper()


def is_opt_out(text: str) -> bool:
    return keyword(text) in OPT_OUT_KEYWORDS


def is_opt_in(text: str) -> bool:
    return keyword(text) in OPT_IN_KEYWORDS


def parse_callback(
    params: Mapping[str, str], *, received_at: datetime
) -> DeliveryStatus | InboundReply | None:
    """A verified callback as a status or a reply; ``None`` for in-flight statuses.

    Twilio callbacks carry no event time, so ``received_at`` stands for it.
    """
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid:
        raise InputError("Twilio callback without MessageSid", field="MessageSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if status in (None, "received", "receiving") and "Body" in params:
        sender = params.get("From")
        if not sender:
            raise InputError("inbound Twilio message without From", field="From")
        return InboundReply(
            channel=ChannelKind.SMS,
            provider_message_id=sid,
            sender=sender,
            text=params["Body"],
            at=received_at,
        )
    mapped = _STATUS_MAP.get(status or "")
    if mapped is None:
        return None
    return DeliveryStatus(
        channel=ChannelKind.SMS,
        provider_message_id=sid,
        status=mapped,
        at=received_at,
        recipient=params.get("To"),
        error_code=params.get("ErrorCode") or None,
        error_detail=params.get("ErrorMessage") or None,
    )
