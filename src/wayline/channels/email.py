"""Email over SMTP (aiosmtplib): multipart plain text + HTML, one-click unsubscribe headers.

Each message is ``multipart/alternative`` with the plain-text part first and the HTML part last
(mail clients show the last part they can). Headers a marketer moving from Klaviyo expects:

- ``List-Unsubscribe: <https://…/u/TOKEN>`` and ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058), which Gmail and Yahoo require of bulk senders; the
  mail client POSTs to the link and the customer is unsubscribed without visiting a page;
- ``Message-ID`` derived from the idempotency key, so a retried send carries the same id and a
  receiving server or the customer's client can recognise the duplicate;
- ``X-Wayline-Message-Id`` with Wayline's own message id, for bounce handling.

TLS: ``use_tls`` is implicit TLS (port 465); ``start_tls`` upgrades a plain connection (587);
``None`` lets aiosmtplib upgrade when the server offers it.

SMTP replies are classified by their code: 4xx (greylisting, mailbox busy) and connection
failures are retryable, 5xx (no such user, rejected) permanent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from wayline.channels.base import (
    AttemptLog,
    ChannelKind,
    Clock,
    EmailContent,
    OutboundMessage,
    Outcome,
    ProviderResponse,
    SendResult,
    attempt_once,
)
from wayline.errors import InputError


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    from_address: str
    from_name: str = ""
    reply_to: str | None = None
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool | None = None
    validate_certs: bool = True
    cert_bundle: str | None = None
    """A CA file to verify the server with (a self-hosted relay with a private CA)."""
    timeout_seconds: float = 30.0
    unsubscribe_mailto: str | None = None
    """An address for mailto unsubscribes, listed after the one-click URL when set."""


def message_id_for(idempotency_key: str, from_address: str) -> str:
    """``<hash-of-key@sender-domain>``: stable across retries, unguessable from outside."""
    domain = from_address.rsplit("@", 1)[-1] or "wayline.invalid"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def build_email(
    message: OutboundMessage, *, idempotency_key: str, settings: SmtpSettings, clock: Clock
) -> EmailMessage:
    """The MIME message for ``message``. Pure but for the ``Date`` taken from ``clock``."""
    content = message.content
    if not isinstance(content, EmailContent):
        raise InputError("an email needs a subject, an HTML and a text body", field="content")
    msg = EmailMessage()
    msg["Subject"] = content.subject
    msg["From"] = Address(display_name=settings.from_name, addr_spec=settings.from_address)
    msg["To"] = message.to
    if settings.reply_to:
        msg["Reply-To"] = settings.reply_to
    msg["Date"] = format_datetime(clock())
    msg["Message-ID"] = message_id_for(idempotency_key, settings.from_address)
    msg["X-Wayline-Message-Id"] = message.message_id
    if message.unsubscribe_url:
        targets = [f"<{message.unsubscribe_url}>"]
        if settings.unsubscribe_mailto:
            targets.append(f"<mailto:{settings.unsubscribe_mailto}?subject=unsubscribe>")
        msg["List-Unsubscribe"] = ", ".join(targets)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(content.text)
    msg.add_alternative(content.html, subtype="html")
    return msg


def _classify_smtp(exc: aiosmtplib.SMTPException) -> ProviderResponse:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [e.code for e in exc.recipients]
        temporary = bool(codes) and all(400 <= c < 500 for c in codes)
        return ProviderResponse(
            Outcome.RETRYABLE if temporary else Outcome.PERMANENT,
            error_code=f"smtp_{codes[0] if codes else 'refused'}",
            detail="; ".join(e.message for e in exc.recipients) or str(exc),
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        temporary = 400 <= exc.code < 500
        return ProviderResponse(
            Outcome.RETRYABLE if temporary else Outcome.PERMANENT,
            error_code=f"smtp_{exc.code}",
            detail=exc.message,
        )
    if isinstance(
        exc,
        (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPTimeoutError,
            aiosmtplib.SMTPServerDisconnected,
        ),
    ):
        # Connection refused, timeouts, a dropped connection: the server may be back soon.
        return ProviderResponse(Outcome.RETRYABLE, error_code="smtp_connection", detail=str(exc))
    # The server lacks what the settings ask for (AUTH without TLS, STARTTLS): a configuration
    # problem that waiting will not fix.
    return ProviderResponse(Outcome.PERMANENT, error_code="smtp_unsupported", detail=str(exc))


class EmailChannel:
    kind = ChannelKind.EMAIL

    def __init__(self, settings: SmtpSettings, *, log: AttemptLog, clock: Clock) -> None:
        self._settings = settings
        self._log = log
        self._clock = clock

    async def send(self, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        mime = build_email(
            message, idempotency_key=idempotency_key, settings=self._settings, clock=self._clock
        )
        s = self._settings

        async def call() -> ProviderResponse:
            try:
                await aiosmtplib.send(
                    mime,
                    hostname=s.host,
                    port=s.port,
                    username=s.username,
                    password=s.password,
                    use_tls=s.use_tls,
                    start_tls=s.start_tls,
                    validate_certs=s.validate_certs,
                    cert_bundle=s.cert_bundle,
                    timeout=s.timeout_seconds,
                )
            except aiosmtplib.SMTPException as exc:
                return _classify_smtp(exc)
            except OSError as exc:
                return ProviderResponse(
                    Outcome.RETRYABLE, error_code="smtp_connection", detail=str(exc)
                )
            return ProviderResponse(
                Outcome.DELIVERED, status_code=250, provider_message_id=str(mime["Message-ID"])
            )

        return await attempt_once(key=idempotency_key, log=self._log, clock=self._clock, call=call)
