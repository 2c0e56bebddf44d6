"""From a template to the message a channel sends; the package's public names."""

from __future__ import annotations

from datetime import UTC, datetime

import wayline.channels as channels
from wayline.channels import (
    ChannelKind,
    LinkSigner,
    MessageRef,
    TextContent,
    WhatsAppTemplateContent,
    compose,
)
from wayline.channels.templates import TemplateLibrary
from wayline.channels.templates.context import SAMPLE_EVENTS, SAMPLE_STORE

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SIGNER = LinkSigner("https://t.example", "s")
CUSTOMER = {"id": "cus_1", "first_name": "ana", "phone": "+351912345678"}


def ref(channel: ChannelKind) -> MessageRef:
    return MessageRef("m_1", "ws", "cus_1", channel, journey_id="j1", step_id="send")


def test_sms_and_whatsapp_messages() -> None:
    template = TemplateLibrary().get("order_follow_up")
    args = {"to": "+351912345678", "customer": CUSTOMER, "store": SAMPLE_STORE,
            "signer": SIGNER, "now": NOW, "event": SAMPLE_EVENTS["order"]}  # fmt: skip
    sms = compose(template, ref=ref(ChannelKind.SMS), **args)  # type: ignore[arg-type]
    assert isinstance(sms.content, TextContent) and "order #1042, Ana!" in sms.content.body
    assert sms.unsubscribe_url is None
    wa = compose(template, ref=ref(ChannelKind.WHATSAPP), **args)  # type: ignore[arg-type]
    assert wa.content == WhatsAppTemplateContent("order_follow_up", "en_US", ("Ana", "1042"))
    session = compose(template, ref=ref(ChannelKind.WHATSAPP), whatsapp_session=True, **args)  # type: ignore[arg-type]
    assert isinstance(session.content, TextContent)
    assert session.content.body.startswith("Thanks for your order #1042, Ana!")
    assert (wa.journey_id, wa.step_id, wa.message_id) == ("j1", "send", "m_1")


def test_public_api_is_curated() -> None:
    # What the runtime and the API import, from the package root.
    for name in ("Channel", "OutboundMessage", "SendResult", "Outcome", "compose",
                 "EmailChannel", "WhatsAppChannel", "SmsChannel", "WebhookChannel",
                 "RetryPolicy", "send_with_retries", "LinkSigner", "MessageRef"):  # fmt: skip
        assert name in channels.__all__
    assert all(hasattr(channels, name) for name in channels.__all__)
