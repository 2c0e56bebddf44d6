"""WhatsApp Cloud API: sends against a fake Graph API, webhooks as Meta sends them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from channels.fakes import FakeGraphAPI, signed_whatsapp, whatsapp_notification
from wayline.channels import (
    ChannelKind,
    InMemoryAttemptLog,
    OutboundMessage,
    Outcome,
    TextContent,
    WhatsAppChannel,
    WhatsAppSettings,
    WhatsAppTemplateContent,
)
from wayline.channels.base import DeliveryStatus, InboundReply
from wayline.channels.tracking import MessageRef, update_events
from wayline.channels.whatsapp import parse_webhook, verify_signature, verify_subscription
from wayline.errors import AuthError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = WhatsAppSettings(
    phone_number_id="1234567890", access_token="EAAG-test", base_url="http://graph.test"
)
APP_SECRET = "app-secret"


def run(coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coro_fn())


def message(content: Any, to: str = "+351912345678") -> OutboundMessage:
    return OutboundMessage(
        message_id="msg_1",
        workspace_id="ws",
        customer_id="cus_1",
        channel=ChannelKind.WHATSAPP,
        to=to,
        content=content,
    )


def channel_for(
    fake: FakeGraphAPI, log: InMemoryAttemptLog
) -> tuple[WhatsAppChannel, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
    return WhatsAppChannel(SETTINGS, client=client, log=log, clock=lambda: NOW), client


def test_template_message_is_sent_in_the_documented_shape() -> None:
    fake = FakeGraphAPI(token="EAAG-test", phone_number_id="1234567890")
    log = InMemoryAttemptLog()

    async def go() -> None:
        channel, client = channel_for(fake, log)
        async with client:
            content = WhatsAppTemplateContent("abandoned_cart_reminder", "pt_BR", ("Ana", "Camisa"))
            result = await channel.send(message(content), idempotency_key="k1")
            assert result.outcome is Outcome.DELIVERED
            assert result.provider_message_id and result.provider_message_id.startswith("wamid.")
            # Same key again: not sent twice.
            again = await channel.send(message(content), idempotency_key="k1")
            assert again.replayed and again.provider_message_id == result.provider_message_id

    run(go)
    assert fake.received == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "351912345678",
            "type": "template",
            "template": {
                "name": "abandoned_cart_reminder",
                "language": {"code": "pt_BR"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ana"},
                            {"type": "text", "text": "Camisa"},
                        ],
                    }
                ],
            },
        }
    ]
    assert len(log.attempts("k1")) == 1


def test_session_text_message() -> None:
    fake = FakeGraphAPI(token="EAAG-test", phone_number_id="1234567890")

    async def go() -> None:
        channel, client = channel_for(fake, InMemoryAttemptLog())
        async with client:
            result = await channel.send(message(TextContent("Olá Ana")), idempotency_key="k")
            assert result.ok

    run(go)
    assert fake.received[0]["text"] == {"preview_url": True, "body": "Olá Ana"}


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (400, 131030, Outcome.PERMANENT),  # recipient not in allowed list
        (400, 132001, Outcome.PERMANENT),  # template does not exist
        (401, 190, Outcome.PERMANENT),  # token expired
        (400, 131047, Outcome.PERMANENT),  # outside the 24-hour window
        (400, 130429, Outcome.RETRYABLE),  # throughput limit
        (429, 80007, Outcome.RETRYABLE),  # WABA rate limit
        (500, 131000, Outcome.RETRYABLE),  # something went wrong
        (503, 0, Outcome.RETRYABLE),
    ],
)
def test_errors_are_classified(status: int, code: int, outcome: Outcome) -> None:
    fake = FakeGraphAPI(token="EAAG-test", phone_number_id="1234567890")
    fake.script.append(
        (status, {"error": {"message": "x", "type": "OAuthException", "code": code}})
    )
    log = InMemoryAttemptLog()

    async def go() -> None:
        channel, client = channel_for(fake, log)
        async with client:
            result = await channel.send(message(TextContent("hi")), idempotency_key="k")
            assert result.outcome is outcome and result.error_code == str(code)
            assert result.attempts[0].status_code == status

    run(go)


def test_the_fake_rejects_requests_off_the_documented_format() -> None:
    # The fake is strict: a wrong token or an invalid number never passes silently.
    fake = FakeGraphAPI(token="another", phone_number_id="1234567890")

    async def go() -> None:
        channel, client = channel_for(fake, InMemoryAttemptLog())
        async with client:
            r1 = await channel.send(message(TextContent("hi")), idempotency_key="a")
            assert r1.outcome is Outcome.PERMANENT and r1.error_code == "190"
        fake.token = "EAAG-test"
        channel, client = channel_for(fake, InMemoryAttemptLog())
        async with client:
            r2 = await channel.send(message(TextContent("hi"), to="+12"), idempotency_key="b")
            assert r2.outcome is Outcome.PERMANENT and r2.error_code == "100"

    run(go)


def test_a_timeout_is_retryable_and_recorded() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    log = InMemoryAttemptLog()

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(boom)) as client:
            channel = WhatsAppChannel(SETTINGS, client=client, log=log, clock=lambda: NOW)
            first = await channel.send(message(TextContent("hi")), idempotency_key="k")
            second = await channel.send(message(TextContent("hi")), idempotency_key="k")
            assert first.outcome is second.outcome is Outcome.RETRYABLE
            assert [a.number for a in second.attempts] == [1, 2]
            assert second.error_code == "timeout"

    run(go)


# --- webhooks --------------------------------------------------------------------------------


def test_subscription_handshake_echoes_the_challenge_only_for_our_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "1158201444"}
    assert verify_subscription(params, verify_token="vt") == "1158201444"
    with pytest.raises(AuthError):
        verify_subscription({**params, "hub.verify_token": "guess"}, verify_token="vt")


def test_a_forged_webhook_is_rejected() -> None:
    body = whatsapp_notification(
        statuses=[
            {
                "id": "wamid.X",
                "status": "read",
                "timestamp": "1795000000",
                "recipient_id": "351912345678",
            }
        ]
    )
    verify_signature(
        body, signed_whatsapp(body, APP_SECRET)["X-Hub-Signature-256"], app_secret=APP_SECRET
    )
    with pytest.raises(AuthError):
        verify_signature(
            body,
            signed_whatsapp(body, "not-the-secret")["X-Hub-Signature-256"],
            app_secret=APP_SECRET,
        )
    tampered = body.replace(b'"read"', b'"failed"')
    with pytest.raises(AuthError):
        verify_signature(
            tampered,
            signed_whatsapp(body, APP_SECRET)["X-Hub-Signature-256"],
            app_secret=APP_SECRET,
        )
    with pytest.raises(AuthError):
        verify_signature(body, None, app_secret=APP_SECRET)


def test_statuses_and_replies_become_timeline_events() -> None:
    body = whatsapp_notification(
        statuses=[
            {
                "id": "wamid.A",
                "status": "delivered",
                "timestamp": "1795000000",
                "recipient_id": "351912345678",
            },
            {
                "id": "wamid.A",
                "status": "read",
                "timestamp": "1795000060",
                "recipient_id": "351912345678",
            },
            {
                "id": "wamid.B",
                "status": "failed",
                "timestamp": "1795000000",
                "recipient_id": "351900000000",
                "errors": [{"code": 131026, "title": "Message undeliverable"}],
            },
            {
                "id": "wamid.unknown",
                "status": "read",
                "timestamp": "1795000000",
                "recipient_id": "1",
            },
        ],
        messages=[
            {
                "from": "351912345678",
                "id": "wamid.R1",
                "timestamp": "1795000100",
                "type": "text",
                "text": {"body": "Is the shirt available in M?"},
                "context": {"from": "15550001111", "id": "wamid.A"},
            },
            {
                "from": "351912345678",
                "id": "wamid.R2",
                "timestamp": "1795000200",
                "type": "button",
                "button": {"text": "STOP", "payload": "stop"},
            },
        ],
    )
    updates = parse_webhook(body)
    assert [type(u) for u in updates] == [DeliveryStatus] * 4 + [InboundReply] * 2
    refs = {
        "wamid.A": MessageRef("m_a", "ws", "cus_1", ChannelKind.WHATSAPP, journey_id="j"),
        "wamid.B": MessageRef("m_b", "ws", "cus_2", ChannelKind.WHATSAPP),
    }
    by_phone = {"+351912345678": MessageRef("m_a", "ws", "cus_1", ChannelKind.WHATSAPP)}
    rows = update_events(
        updates,
        find_message=lambda ch, pid: refs.get(pid),
        find_customer=lambda ch, phone: by_phone.get(phone),
        received_at=NOW,
    )
    names = [(r["event"], r["person_id"]) for r in rows]
    assert names == [
        ("whatsapp_delivered", "cus_1"),
        ("whatsapp_read", "cus_1"),
        ("message_failed", "cus_2"),
        ("whatsapp_reply", "cus_1"),
        ("whatsapp_reply", "cus_1"),
        ("unsubscribed", "cus_1"),
    ]
    assert rows[2]["properties"]["error_code"] == "131026"
    assert rows[3]["properties"]["text"] == "Is the shirt available in M?"
    assert rows[3]["properties"]["message_id"] == "m_a"
    assert rows[1]["timestamp"] == datetime.fromtimestamp(1795000060, tz=UTC)
    # A webhook delivered twice gives the same event ids (deduplicated downstream).
    again = update_events(
        parse_webhook(body),
        find_message=lambda ch, pid: refs.get(pid),
        find_customer=lambda ch, p: by_phone.get(p),
        received_at=NOW,
    )
    assert [r["message_id"] for r in again] == [r["message_id"] for r in rows]
