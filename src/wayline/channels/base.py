"""The one interface the journey runtime sends through, and what a send returns.

A :class:`Channel` takes an :class:`OutboundMessage` (already rendered: subject and bodies, or a
WhatsApp template name with its parameters) and an *idempotency key* — the runtime's id for "this
send step, for this customer, in this journey run" — and returns a :class:`SendResult`. Failures
are values, not exceptions, classified so that the runtime knows what to do next:

- ``delivered``  the provider accepted the message (its id is in ``provider_message_id``);
- ``retryable``  a timeout, a 429 or a 5xx: try again later (``retry_after`` when the provider
  said how long to wait), see :mod:`wayline.channels.retry`;
- ``permanent``  an invalid number, a rejected template, any other 4xx: trying again cannot help,
  so the journey takes its failure branch (or exits).

Every attempt is recorded in an :class:`AttemptLog` under the idempotency key. A channel asks the
log first: a key that was already delivered (or failed for good) is not sent again, which is what
makes a crash-and-retry of the runtime safe even with providers that have no idempotency keys of
their own (Twilio, the WhatsApp Cloud API).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


class ChannelKind(enum.StrEnum):
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    SMS = "sms"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class EmailContent:
    subject: str
    html: str
    text: str
    preheader: str = ""


@dataclass(frozen=True)
class WhatsAppTemplateContent:
    """An approved WhatsApp template: its name, language code and body parameters, in order."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()
    header_parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextContent:
    """A plain text: an SMS, or a WhatsApp session message (inside the 24-hour window)."""

    body: str


@dataclass(frozen=True)
class WebhookContent:
    payload: Mapping[str, Any]


Content = EmailContent | WhatsAppTemplateContent | TextContent | WebhookContent


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one recipient, rendered and ready to hand to a provider.

    ``message_id`` is Wayline's own id of the message (it links opens, clicks, statuses and
    replies back to it); ``to`` is an email address, an E.164 phone number or a URL.
    """

    message_id: str
    workspace_id: str
    customer_id: str
    channel: ChannelKind
    to: str
    content: Content
    journey_id: str | None = None
    step_id: str | None = None
    unsubscribe_url: str | None = None
    """The one-click unsubscribe link (email ``List-Unsubscribe``)."""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Attempt:
    """One call to a provider: when, how it ended, and what the provider said."""

    number: int
    at: datetime
    outcome: Outcome
    status_code: int | None = None
    error_code: str | None = None
    detail: str = ""
    duration_ms: float = 0.0
    provider_message_id: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What a send came to; ``attempts`` holds every attempt under this key, oldest first."""

    outcome: Outcome
    idempotency_key: str
    provider_message_id: str | None = None
    error_code: str | None = None
    detail: str = ""
    retry_after: timedelta | None = None
    attempts: tuple[Attempt, ...] = ()
    replayed: bool = False
    """True when nothing was sent because the key had already reached a final outcome."""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.DELIVERED


class Channel(Protocol):
    """A delivery provider. ``send`` never raises for a provider failure: it returns it."""

    kind: ChannelKind

    async def send(self, message: OutboundMessage, *, idempotency_key: str) -> SendResult: ...


class AttemptLog(Protocol):
    """Where attempts are recorded (the runtime's outbox table in production)."""

    def attempts(self, idempotency_key: str) -> Sequence[Attempt]: ...

    def record(self, idempotency_key: str, attempt: Attempt) -> None: ...


class InMemoryAttemptLog:
    """An :class:`AttemptLog` in a dict: for tests, previews and single-process use."""

    def __init__(self) -> None:
        self._by_key: dict[str, list[Attempt]] = {}

    def attempts(self, idempotency_key: str) -> Sequence[Attempt]:
        return tuple(self._by_key.get(idempotency_key, ()))

    def record(self, idempotency_key: str, attempt: Attempt) -> None:
        self._by_key.setdefault(idempotency_key, []).append(attempt)


def final_attempt(attempts: Sequence[Attempt]) -> Attempt | None:
    """The attempt that settled a key (delivered or permanent), if any did."""
    return next((a for a in attempts if a.outcome is not Outcome.RETRYABLE), None)


def classify_status(status_code: int) -> Outcome:
    """An HTTP status as an outcome: 2xx delivered; 408, 425, 429, 5xx retryable; else permanent."""
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code in (408, 425, 429) or status_code >= 500:
        return Outcome.RETRYABLE
    return Outcome.PERMANENT


def parse_retry_after(value: str | None) -> timedelta | None:
    """A ``Retry-After`` header given in seconds (the HTTP-date form is ignored: rare in APIs)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return timedelta(seconds=max(0.0, min(seconds, 86400.0)))


@dataclass(frozen=True)
class ProviderResponse:
    """What one provider call came to, before it is recorded as an :class:`Attempt`."""

    outcome: Outcome
    status_code: int | None = None
    provider_message_id: str | None = None
    error_code: str | None = None
    detail: str = ""
    retry_after: timedelta | None = None


class Clock(Protocol):
    def __call__(self) -> datetime: ...


def result_of(key: str, attempts: Sequence[Attempt], *, replayed: bool = False) -> SendResult:
    """The :class:`SendResult` that a key's attempts come to (its settling or its last one)."""
    last = final_attempt(attempts) or attempts[-1]
    return SendResult(
        outcome=last.outcome,
        idempotency_key=key,
        provider_message_id=last.provider_message_id,
        error_code=last.error_code,
        detail=last.detail,
        attempts=tuple(attempts),
        replayed=replayed,
    )


async def attempt_once(
    *,
    key: str,
    log: AttemptLog,
    clock: Clock,
    call: Callable[[], Awaitable[ProviderResponse]],
) -> SendResult:
    """Make one attempt under ``key`` unless the key is already settled; record it.

    Every channel's ``send`` goes through here, so "never twice" and "every attempt recorded"
    are written once.
    """
    previous = log.attempts(key)
    if final_attempt(previous) is not None:
        return result_of(key, previous, replayed=True)
    at = clock()
    started = time.perf_counter()
    response = await call()
    attempt = Attempt(
        number=len(previous) + 1,
        at=at,
        outcome=response.outcome,
        status_code=response.status_code,
        error_code=response.error_code,
        detail=response.detail[:500],
        duration_ms=(time.perf_counter() - started) * 1000.0,
        provider_message_id=response.provider_message_id,
    )
    log.record(key, attempt)
    attempts = (*previous, attempt)
    return SendResult(
        outcome=attempt.outcome,
        idempotency_key=key,
        provider_message_id=attempt.provider_message_id,
        error_code=attempt.error_code,
        detail=attempt.detail,
        retry_after=response.retry_after,
        attempts=attempts,
    )


@dataclass(frozen=True)
class DeliveryStatus:
    """A provider's status report for a message we sent (from a verified webhook)."""

    channel: ChannelKind
    provider_message_id: str
    status: str
    """``sent``, ``delivered``, ``read``, ``failed`` (``undelivered`` counts as failed)."""
    at: datetime
    recipient: str | None = None
    error_code: str | None = None
    error_detail: str | None = None


@dataclass(frozen=True)
class InboundReply:
    """A message a customer sent us (a WhatsApp message, an SMS)."""

    channel: ChannelKind
    provider_message_id: str
    sender: str
    text: str
    at: datetime
    in_reply_to: str | None = None
    """The provider id of our message it answers, when the provider says (WhatsApp context)."""


ProviderUpdate = DeliveryStatus | InboundReply
