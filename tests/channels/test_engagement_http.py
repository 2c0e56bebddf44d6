"""The HTTP side of engagement: pixels, clicks, unsubscribes and provider webhooks, end to end
through the app into the tracking inbox — and forgeries of each refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select

from channels.fakes import (
    signed_twilio,
    signed_whatsapp,
    twilio_inbound,
    twilio_status_callback,
    whatsapp_notification,
)
from dashboard_fixtures import Site
from wayline.channels.base import ChannelKind
from wayline.channels.tracking import LinkSigner, MessageRef
from wayline.storage.channel_config import ChannelConfigStore
from wayline.storage.journey_models import OutboxRow
from wayline.storage.models import CustomerProfile, InboxRequest
from wayline.storage.secretbox import SecretBox, tracking_secret

NOW = datetime.now(UTC)


def _ref(site: Site, channel: ChannelKind = ChannelKind.EMAIL) -> MessageRef:
    return MessageRef("msg-1", site.a.workspace_id, "cust-1", channel, "cart", "email_1")


def _signer(site: Site) -> LinkSigner:
    return LinkSigner(base_url="http://testserver", secret=tracking_secret(site.settings))


def _inbox(site: Site) -> list[dict[str, Any]]:
    """The events the inbox holds, one per ``messageId`` (the first copy, as the mover keeps)."""
    with site.db.read() as conn:
        rows = conn.execute(
            select(InboxRequest.workspace_id, InboxRequest.payload).order_by(InboxRequest.id)
        ).all()
    events: dict[tuple[str, str], dict[str, Any]] = {}
    for workspace_id, payload in rows:
        for message in orjson.loads(payload):
            events.setdefault(
                (workspace_id, message["messageId"]), {"workspace_id": workspace_id, **message}
            )
    return list(events.values())


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_open_pixel_records_an_open_once_and_a_forged_one_nothing(site: Site) -> None:
    url = _path(_signer(site).open_url(_ref(site), now=NOW))
    for _ in range(2):  # image proxies fetch twice: one event per minute
        r = site.client.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    [event] = _inbox(site)
    assert (event["event"], event["userId"], event["workspace_id"]) == (
        "email_opened",
        "cust-1",
        site.a.workspace_id,
    )
    assert event["properties"]["message_id"] == "msg-1"
    forged = url.replace(".gif", "x.gif")
    assert site.client.get(forged).status_code == 200  # still an image…
    assert len(_inbox(site)) == 1  # …but nothing recorded


def test_click_redirects_to_the_signed_destination_only(site: Site) -> None:
    url = _path(_signer(site).click_url(_ref(site), "https://shop.example/cart", now=NOW))
    r = site.client.get(url)
    assert r.status_code == 302 and r.headers["location"] == "https://shop.example/cart"
    [event] = _inbox(site)
    assert event["event"] == "email_clicked"
    assert event["properties"]["url"] == "https://shop.example/cart"
    # Another secret (another data folder, or an attacker) cannot mint a working link.
    evil = LinkSigner(base_url="http://testserver", secret="not-ours").click_url(
        _ref(site), "https://evil.example/", now=NOW
    )
    r = site.client.get(_path(evil))
    assert r.status_code == 404 and "not valid" in r.text
    assert len(_inbox(site)) == 1


def test_unsubscribe_needs_a_post_and_works_once(site: Site) -> None:
    url = _path(_signer(site).unsubscribe_url(_ref(site), now=NOW))
    page = site.client.get(url)
    assert page.status_code == 200 and "<form" in page.text
    assert _inbox(site) == []  # a link scanner's GET unsubscribes no one
    done = site.client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "unsubscribed" in done.text
    [event] = _inbox(site)
    assert event["event"] == "unsubscribed" and event["properties"]["channel"] == "email"
    replay = site.client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert replay.status_code == 410
    assert len(_inbox(site)) == 1
    expired = _signer(site).unsubscribe_url(_ref(site), now=NOW - timedelta(days=365))
    assert site.client.post(_path(expired)).status_code == 404


def _configure(site: Site, channel: str, raw: dict[str, Any]) -> None:
    ChannelConfigStore(site.db, SecretBox.for_settings(site.settings)).put(
        site.a.workspace_id, channel, raw
    )


def _sent(site: Site, channel: str, provider_id: str, person: str = "cust-1") -> None:
    with site.db.write() as conn:
        conn.execute(
            insert(OutboxRow).values(
                workspace_id=site.a.workspace_id,
                idempotency_key=f"k-{provider_id}",
                kind="send",
                channel=channel,
                instance_id="i-1",
                journey_id="cart",
                version=1,
                person_id=person,
                step_id="wa_1",
                payload=orjson.dumps({"message_id": f"m-{provider_id}"}).decode(),
                status="sent",
                due_at=NOW,
                attempts=1,
                outcome=provider_id,
                created_at=NOW,
                done_at=NOW,
            )
        )
        conn.execute(
            insert(CustomerProfile).values(
                workspace_id=site.a.workspace_id,
                person_id=person,
                phone="+351912345678",
                consent={},
                traits={},
                first_seen=NOW,
                last_seen=NOW,
            )
        )


WA = {
    "phone_number_id": "1234567890",
    "access_token": "EAAG-token-1234",
    "app_secret": "s3cret",
    "verify_token": "hello-meta",
}


def test_whatsapp_handshake_and_signed_statuses(site: Site) -> None:
    base = f"/webhooks/whatsapp/{site.a.workspace_id}"
    assert site.client.get(base, params={"hub.mode": "subscribe"}).status_code == 404
    _configure(site, "whatsapp", WA)
    ok = site.client.get(
        base,
        params={"hub.mode": "subscribe", "hub.verify_token": "hello-meta", "hub.challenge": "42"},
    )
    assert ok.status_code == 200 and ok.text == "42"
    bad = site.client.get(
        base, params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"}
    )
    assert bad.status_code == 401
    _sent(site, "whatsapp", "wamid.A")
    body = whatsapp_notification(
        statuses=[
            {
                "id": "wamid.A",
                "status": "read",
                "timestamp": "1795000000",
                "recipient_id": "351912345678",
            }
        ],
        messages=[
            {
                "from": "351912345678",
                "id": "wamid.R",
                "timestamp": "1795000060",
                "type": "text",
                "text": {"body": "STOP"},
            }
        ],
    )
    forged = site.client.post(base, content=body, headers=signed_whatsapp(body, "wrong"))
    assert forged.status_code == 401 and _inbox(site) == []
    r = site.client.post(base, content=body, headers=signed_whatsapp(body, "s3cret"))
    assert r.status_code == 200
    events = {e["event"]: e for e in _inbox(site)}
    assert set(events) == {"whatsapp_read", "whatsapp_reply", "unsubscribed"}
    assert events["whatsapp_read"]["properties"]["message_id"] == "m-wamid.A"
    assert events["whatsapp_reply"]["userId"] == "cust-1"
    # Meta retries deliveries: the same notification lands once.
    site.client.post(base, content=body, headers=signed_whatsapp(body, "s3cret"))
    assert len(_inbox(site)) == 3
    # Another workspace's webhook URL does not take workspace A's signature.
    other = f"/webhooks/whatsapp/{site.b.workspace_id}"
    assert (
        site.client.post(other, content=body, headers=signed_whatsapp(body, "s3cret")).status_code
        == 404
    )


def test_twilio_callbacks_are_signed_and_stop_unsubscribes(site: Site) -> None:
    path = f"/webhooks/twilio/{site.a.workspace_id}"
    url = f"http://testserver{path}"
    _configure(
        site, "sms", {"account_sid": "AC1", "auth_token": "tw-token", "from_number": "+15005550006"}
    )
    _sent(site, "sms", "SM1")
    status = twilio_status_callback("SM1", "delivered", account_sid="AC1")
    forged = site.client.post(path, data=status, headers={"X-Twilio-Signature": "AAAA"})
    assert forged.status_code == 401
    signed = {"X-Twilio-Signature": signed_twilio(url, status, "tw-token")}
    assert site.client.post(path, data=status, headers=signed).status_code == 200
    inbound = twilio_inbound("SM2", sender="+351912345678", body="stop", account_sid="AC1")
    signed = {"X-Twilio-Signature": signed_twilio(url, inbound, "tw-token")}
    assert site.client.post(path, data=inbound, headers=signed).status_code == 200
    assert sorted(e["event"] for e in _inbox(site)) == [
        "sms_delivered",
        "sms_reply",
        "unsubscribed",
    ]


@pytest.mark.parametrize(
    ("channel", "raw", "field"),
    [
        ("email", {"host": "smtp.example", "port": "x", "from_address": "a@b"}, "port"),
        ("whatsapp", {"phone_number_id": "1", "access_token": "t", "apptoken": "x"}, "apptoken"),
        ("sms", {"account_sid": "AC1"}, "auth_token"),
    ],
)
def test_provider_settings_are_validated_and_name_the_field(
    site: Site, channel: str, raw: dict[str, Any], field: str
) -> None:
    from wayline.errors import InputError

    with pytest.raises(InputError) as err:
        _configure(site, channel, raw)
    assert err.value.field == field


def test_provider_secrets_are_encrypted_at_rest(site: Site) -> None:
    from wayline.storage.workspace_models import ChannelSettingRow

    _configure(site, "whatsapp", WA)
    with site.db.read() as conn:
        stored = conn.execute(select(ChannelSettingRow.config_encrypted)).scalar_one()
    assert "EAAG-token" not in stored and "s3cret" not in stored
