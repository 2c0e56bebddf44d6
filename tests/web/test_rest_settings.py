"""``/api/v1/settings``: channel credentials encrypted at rest and never returned; the sending
policy validated; write keys — each workspace its own."""

from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy import select

from dashboard_fixtures import Site
from wayline.api.rest.settings import SendingSettings, send_policy
from wayline.journeys.policies import FrequencyCap, QuietHours
from wayline.storage.workspace_models import ChannelSettingRow

SMTP = {
    "host": "smtp.shop.example",
    "port": 587,
    "from_address": "hello@shop.example",
    "username": "mailer",
    "password": "s3cret-smtp-password-9876",
}
TWILIO = {
    "account_sid": "AC" + "1" * 32,
    "auth_token": "twilio-token-abcdef-4321",
    "from_number": "+15550001111",
}


def test_secrets_are_encrypted_at_rest_and_never_returned(site: Site) -> None:
    c, h = site.client, site.a.headers
    assert c.get("/api/v1/settings/channels/email", headers=h).json()["configured"] is False
    r = c.put("/api/v1/settings/channels/email", json=SMTP, headers=h)
    assert r.status_code == 200, r.text
    shown = r.json()["settings"]
    assert shown["password"] == "••••9876" and shown["host"] == "smtp.shop.example"
    assert "s3cret" not in r.text
    got = c.get("/api/v1/settings/channels/email", headers=h)
    assert "s3cret" not in got.text and got.json()["configured"] is True
    with site.db.read() as conn:
        raw = conn.execute(
            select(ChannelSettingRow.config_encrypted).where(
                ChannelSettingRow.workspace_id == site.a.workspace_id
            )
        ).scalar_one()
    assert "s3cret" not in raw and "smtp.shop.example" not in raw
    # Saving the form again with the masked value (or none) keeps the stored secret.
    again = {**SMTP, "password": "••••9876", "port": 2525}
    assert (
        c.put("/api/v1/settings/channels/email", json=again, headers=h).json()["settings"]["port"]
        == 2525
    )
    from wayline.storage.channel_config import ChannelConfigStore
    from wayline.storage.secretbox import SecretBox

    store = ChannelConfigStore(site.db, SecretBox.for_settings(site.settings))
    assert store.raw(site.a.workspace_id, "email")["password"] == SMTP["password"]  # type: ignore[index]
    # A new secret replaces it.
    c.put(
        "/api/v1/settings/channels/email", json={**SMTP, "password": "another-one-0000"}, headers=h
    )
    assert store.raw(site.a.workspace_id, "email")["password"] == "another-one-0000"  # type: ignore[index]


def test_channel_settings_are_validated_naming_the_field(site: Site) -> None:
    c, h = site.client, site.a.headers
    r = c.put("/api/v1/settings/channels/email", json={**SMTP, "port": "many"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "port"
    r = c.put("/api/v1/settings/channels/email", json={**SMTP, "colour": "red"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "colour"
    r = c.put("/api/v1/settings/channels/sms", json={"from_number": "+1555"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] in ("account_sid", "auth_token")
    assert c.put("/api/v1/settings/channels/fax", json={}, headers=h).status_code == 422
    assert c.get("/api/v1/settings/channels/email", headers=h).json()["configured"] is False
    ok = c.put("/api/v1/settings/channels/sms", json=TWILIO, headers=h)
    assert ok.status_code == 200 and ok.json()["settings"]["auth_token"] == "••••4321"


def test_sending_policy(site: Site) -> None:
    c, h = site.client, site.a.headers
    default = c.get("/api/v1/settings/sending", headers=h).json()
    assert default["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    assert default["frequency_cap"] == {"max_messages": 3, "per_hours": 24}
    body = {
        "quiet_hours": {"start": "22:30", "end": "07:00"},
        "frequency_cap": {"max_messages": 2, "per_hours": 48},
        "default_timezone": "Europe/Rome",
    }
    r = c.put("/api/v1/settings/sending", json=body, headers=h)
    assert r.status_code == 200 and r.json()["quiet_hours"]["start"] == "22:30"
    assert c.get("/api/v1/settings/sending", headers=site.b.headers).json() == default
    policy = send_policy(
        SendingSettings.model_validate(c.get("/api/v1/settings/sending", headers=h).json())
    )
    rules = {type(rule): rule for rule in policy.rules}
    assert rules[QuietHours] == QuietHours(start=time(22, 30), end=time(7, 0))
    assert rules[FrequencyCap] == FrequencyCap(max_messages=2, per=timedelta(hours=48))
    off = c.put(
        "/api/v1/settings/sending", json={"quiet_hours": None, "frequency_cap": None}, headers=h
    )
    assert off.json()["quiet_hours"] is None
    for bad, field in (
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "quiet_hours"),
        ({"frequency_cap": {"max_messages": 0, "per_hours": 24}}, "frequency_cap.max_messages"),
        ({"default_timezone": "Mars/Olympus"}, "default_timezone"),
        ({"quiet": True}, "quiet"),
    ):
        r = c.put("/api/v1/settings/sending", json=bad, headers=h)
        assert r.status_code == 422 and r.json()["field"].startswith(field), (bad, r.json())


def test_write_keys_and_workspace_isolation(site: Site) -> None:
    c = site.client
    mine = c.get("/api/v1/settings/write-keys", headers=site.a.headers).json()
    assert [k["key"] for k in mine] == [site.a.write_key]
    theirs = c.get("/api/v1/settings/write-keys", headers=site.b.headers).json()
    assert [k["key"] for k in theirs] == [site.b.write_key]
    c.put("/api/v1/settings/channels/sms", json=TWILIO, headers=site.a.headers)
    assert (
        c.get("/api/v1/settings/channels/sms", headers=site.b.headers).json()["configured"] is False
    )
    assert c.get("/api/v1/settings/write-keys").status_code == 401
