"""SMS through Twilio: sends against a fake Messages API, signed callbacks, STOP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from channels.fakes import FakeTwilio, signed_twilio, twilio_inbound, twilio_status_callback
from wayline.channels import (
    ChannelKind,
    InMemoryAttemptLog,
    OutboundMessage,
    Outcome,
    SmsChannel,
    TextContent,
    TwilioSettings,
)
from wayline.channels.sms import is_opt_in, is_opt_out, parse_callback, verify_signature
from wayline.channels.tracking import MessageRef, consent_traits, update_events
from wayline.errors import AuthError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SID, TOKEN = "AC" + "a" * 32, "auth-token"
CALLBACK = "https://api.shop.example/hooks/twilio/status?ws=ws_1"
SETTINGS = TwilioSettings(
    account_sid=SID,
    auth_token=TOKEN,
    from_number="+15005550006",
    status_callback_url=CALLBACK,
    base_url="http://twilio.test",
)


def message(to: str = "+351912345678", body: str = "Your cart is waiting") -> OutboundMessage:
    return OutboundMessage(
        message_id="msg_1",
        workspace_id="ws",
        customer_id="cus_1",
        channel=ChannelKind.SMS,
        to=to,
        content=TextContent(body),
    )


async def send(
    fake: FakeTwilio,
    msg: OutboundMessage,
    key: str,
    settings: TwilioSettings = SETTINGS,
    log: InMemoryAttemptLog | None = None,
):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as client:
        channel = SmsChannel(
            settings, client=client, log=log or InMemoryAttemptLog(), clock=lambda: NOW
        )
        return await channel.send(msg, idempotency_key=key)


def test_sms_is_sent_form_encoded_with_basic_auth() -> None:
    fake = FakeTwilio(account_sid=SID, auth_token=TOKEN)
    result = asyncio.run(send(fake, message(), "k"))
    assert result.outcome is Outcome.DELIVERED and result.provider_message_id.startswith("SM")  # type: ignore[union-attr]
    assert fake.received == [
        {
            "To": "+351912345678",
            "From": "+15005550006",
            "Body": "Your cart is waiting",
            "StatusCallback": CALLBACK,
        }
    ]


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (400, 21610, Outcome.PERMANENT),  # the number replied STOP
        (400, 21614, Outcome.PERMANENT),  # not a mobile number
        (429, 20429, Outcome.RETRYABLE),
        (500, 20500, Outcome.RETRYABLE),
    ],
)
def test_errors_are_classified(status: int, code: int, outcome: Outcome) -> None:
    fake = FakeTwilio(account_sid=SID, auth_token=TOKEN)
    fake.script.append((status, {"code": code, "message": "x", "more_info": "", "status": status}))
    result = asyncio.run(send(fake, message(), "k"))
    assert (result.outcome, result.error_code) == (outcome, str(code))


def test_an_invalid_number_is_permanent() -> None:
    fake = FakeTwilio(account_sid=SID, auth_token=TOKEN)
    result = asyncio.run(send(fake, message(to="0912 345"), "k"))
    assert (result.outcome, result.error_code) == (Outcome.PERMANENT, "21211")
    assert result.attempts[0].status_code == 400


def test_wrong_credentials_are_permanent() -> None:
    fake = FakeTwilio(account_sid=SID, auth_token="other")
    result = asyncio.run(send(fake, message(), "k"))
    assert (result.outcome, result.error_code) == (Outcome.PERMANENT, "20003")


def test_signed_status_callback_becomes_an_event_and_a_forged_one_is_rejected() -> None:
    params = twilio_status_callback("SM1", "delivered", account_sid=SID)
    signature = signed_twilio(CALLBACK, params, TOKEN)
    verify_signature(CALLBACK, params, signature, auth_token=TOKEN)
    with pytest.raises(AuthError):
        verify_signature(CALLBACK, {**params, "MessageStatus": "read"}, signature, auth_token=TOKEN)
    with pytest.raises(AuthError):
        verify_signature(
            CALLBACK, params, signed_twilio(CALLBACK, params, "guess"), auth_token=TOKEN
        )
    with pytest.raises(AuthError):
        verify_signature(CALLBACK.replace("ws_1", "ws_2"), params, signature, auth_token=TOKEN)
    with pytest.raises(AuthError):
        verify_signature(CALLBACK, params, None, auth_token=TOKEN)

    ref = MessageRef("msg_1", "ws_1", "cus_1", ChannelKind.SMS)
    updates = [
        parse_callback(params, received_at=NOW),
        parse_callback(twilio_status_callback("SM1", "sending", account_sid=SID), received_at=NOW),
        parse_callback(
            twilio_status_callback("SM1", "undelivered", account_sid=SID, error_code="30003"),
            received_at=NOW,
        ),
    ]
    assert updates[1] is None
    rows = update_events(
        [u for u in updates if u is not None],
        find_message=lambda ch, sid: ref if sid == "SM1" else None,
        find_customer=lambda ch, phone: None,
        received_at=NOW,
    )
    assert [r["event"] for r in rows] == ["sms_delivered", "message_failed"]
    assert rows[1]["properties"]["error_code"] == "30003"
    assert rows[0]["channel"] == "sms"


@pytest.mark.parametrize("text", ["STOP", "stop", " Unsubscribe ", "Stop.", "QUIT", "cancel!"])
def test_opt_out_keywords(text: str) -> None:
    assert is_opt_out(text)


@pytest.mark.parametrize("text", ["don't stop", "STOP sending me so many", "stopp", "yes"])
def test_ordinary_replies_are_not_opt_outs(text: str) -> None:
    assert not is_opt_out(text)


def test_inbound_stop_reply_revokes_consent() -> None:
    ref = MessageRef("msg_9", "ws_1", "cus_1", ChannelKind.SMS)
    params = twilio_inbound("SM9", sender="+351912345678", body="STOP", account_sid=SID)
    reply = parse_callback(params, received_at=NOW)
    rows = update_events(
        [reply] if reply else [],
        find_message=lambda ch, sid: None,
        find_customer=lambda ch, phone: ref if phone == "+351912345678" else None,
        received_at=NOW,
    )
    assert [r["event"] for r in rows] == ["sms_reply", "unsubscribed"]
    assert rows[1]["properties"]["method"] == "keyword"
    assert consent_traits(rows[1]) == {"sms_unsubscribed": True}
    assert consent_traits(rows[0]) is None
    start = parse_callback(
        twilio_inbound("SM10", sender="+351912345678", body="Start", account_sid=SID),
        received_at=NOW,
    )
    again = update_events(
        [start] if start else [],
        find_message=lambda ch, sid: None,
        find_customer=lambda ch, phone: ref,
        received_at=NOW,
    )
    assert [r["event"] for r in again] == ["sms_reply", "subscribed"]
    assert consent_traits(again[1]) == {"sms_unsubscribed": False}
    assert is_opt_in("start")
