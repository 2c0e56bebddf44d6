"""Channels: how Wayline's messages reach customers, and how what happens to them comes back.

The journey runtime calls one interface, :class:`Channel` (``await channel.send(message,
idempotency_key=…)``), implemented per provider — :class:`EmailChannel` (SMTP),
:class:`WhatsAppChannel` (Meta Cloud API), :class:`SmsChannel` (Twilio), :class:`WebhookChannel`
(the store's own URL) — and gets back a :class:`SendResult` classified delivered, retryable or
permanent. :func:`compose` turns a template (:mod:`wayline.channels.templates`) into the message;
:mod:`wayline.channels.tracking` signs open/click/unsubscribe links and turns verified provider
webhooks into events on the customer's timeline.
"""

from wayline.channels.base import (
    Attempt,
    AttemptLog,
    Channel,
    ChannelKind,
    DeliveryStatus,
    EmailContent,
    InboundReply,
    InMemoryAttemptLog,
    OutboundMessage,
    Outcome,
    SendResult,
    TextContent,
    WebhookContent,
    WhatsAppTemplateContent,
)
from wayline.channels.compose import compose
from wayline.channels.email import EmailChannel, SmtpSettings
from wayline.channels.retry import RetryPolicy, send_with_retries
from wayline.channels.sms import SmsChannel, TwilioSettings
from wayline.channels.tracking import LinkSigner, MessageRef
from wayline.channels.webhook import WebhookChannel, WebhookSettings
from wayline.channels.whatsapp import WhatsAppChannel, WhatsAppSettings

__all__ = [
    "Attempt",
    "AttemptLog",
    "Channel",
    "ChannelKind",
    "DeliveryStatus",
    "EmailChannel",
    "EmailContent",
    "InMemoryAttemptLog",
    "InboundReply",
    "LinkSigner",
    "MessageRef",
    "OutboundMessage",
    "Outcome",
    "RetryPolicy",
    "SendResult",
    "SmsChannel",
    "SmtpSettings",
    "TextContent",
    "TwilioSettings",
    "WebhookChannel",
    "WebhookContent",
    "WebhookSettings",
    "WhatsAppChannel",
    "WhatsAppSettings",
    "WhatsAppTemplateContent",
    "compose",
    "send_with_retries",
]
