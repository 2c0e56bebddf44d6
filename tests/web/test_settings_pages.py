"""The dashboard's settings and template pages: masked secrets, sending rules, API keys shown
once, template editing with preview — CSRF on every form, one workspace each."""

from __future__ import annotations

from sqlalchemy import select

from dashboard_fixtures import Site
from wayline.storage.accounts import Accounts
from wayline.storage.workspace_models import ChannelSettingRow


def test_channel_form_masks_and_keeps_secrets(site: Site) -> None:
    browser = site.browser()
    page = browser.get("/settings").text
    assert 'id="channel-email"' in page and 'for="email-host"' in page
    token = site.csrf(browser, "/settings")
    form = {
        "host": "smtp.shop.example",
        "port": "587",
        "from_address": "hello@shop.example",
        "password": "hunter2-hunter2-7777",
        "use_tls": "",
    }
    assert browser.post("/settings/channels/email", data=form).status_code == 403
    r = browser.post("/settings/channels/email", data={**form, "csrf_token": token})
    assert r.status_code == 303, r.text
    shown = browser.get("/settings").text
    assert "hunter2" not in shown and "••••7777" in shown
    # The form saved again with the secret field empty keeps the stored password.
    browser.post("/settings/channels/email", data={**form, "password": "", "csrf_token": token})
    from wayline.storage.channel_config import ChannelConfigStore
    from wayline.storage.secretbox import SecretBox

    raw = ChannelConfigStore(site.db, SecretBox.for_settings(site.settings)).raw(
        site.a.workspace_id, "email"
    )
    assert raw is not None and raw["password"] == "hunter2-hunter2-7777"
    with site.db.read() as conn:
        sealed = conn.execute(select(ChannelSettingRow.config_encrypted)).scalar_one()
    assert "hunter2" not in sealed
    bad = browser.post(
        "/settings/channels/email", data={**form, "port": "lots", "csrf_token": token}
    )
    assert bad.status_code == 400 and "port" in bad.text
    assert "hunter2" not in site.browser(site.b).get("/settings").text


def test_sending_rules_form(site: Site) -> None:
    browser = site.browser()
    token = site.csrf(browser, "/settings")
    r = browser.post(
        "/settings/sending",
        data={
            "csrf_token": token,
            "quiet_enabled": "1",
            "quiet_start": "22:00",
            "quiet_end": "07:30",
            "cap_max": "5",
            "cap_hours": "24",
            "default_timezone": "Europe/Berlin",
        },
    )
    assert r.status_code == 303
    got = site.client.get("/api/v1/settings/sending", headers=site.a.headers).json()
    assert got["quiet_hours"] == {"start": "22:00", "end": "07:30"}
    assert got["frequency_cap"] is None and got["default_timezone"] == "Europe/Berlin"
    bad = browser.post(
        "/settings/sending",
        data={"csrf_token": token, "cap_enabled": "1", "cap_max": "0", "cap_hours": "24"},
    )
    assert bad.status_code == 400 and "max_messages" in bad.text


def test_api_key_is_shown_once_and_can_be_revoked(site: Site) -> None:
    browser = site.browser()
    token = site.csrf(browser, "/settings")
    created = browser.post("/settings/api-keys", data={"csrf_token": token, "name": "reports"})
    assert created.status_code == 200
    key = created.text.split('id="new-api-key">', 1)[1].split("<", 1)[0]
    assert key.startswith("wl_sk_")
    assert (
        site.client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )
    assert key not in browser.get("/settings").text
    info = next(
        k for k in Accounts(site.db).list_api_keys(site.a.workspace_id) if k.name == "reports"
    )
    # Workspace b cannot revoke a's key.
    other = site.browser(site.b)
    other.post(
        f"/settings/api-keys/{info.id}/revoke", data={"csrf_token": site.csrf(other, "/settings")}
    )
    assert (
        site.client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )
    r = browser.post(f"/settings/api-keys/{info.id}/revoke", data={"csrf_token": token})
    assert r.status_code == 303
    assert (
        site.client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )
    assert site.b.write_key not in browser.get("/settings").text
    assert site.a.write_key in browser.get("/settings").text


TEMPLATE = """name: thanks
title: Thanks
trigger: order
email:
  subject: "Thanks {{ first_name('friend') }}"
  html: "<p>Thank you, {{ first_name('friend') }}!</p>"
"""


def test_template_pages(site: Site) -> None:
    browser = site.browser()
    listing = browser.get("/settings/templates").text
    assert 'href="/settings/templates/abandoned_cart"' in listing and "pre-built" in listing
    token = site.csrf(browser, "/settings/templates/new")
    assert browser.post("/settings/templates", data={"yaml": TEMPLATE}).status_code == 403
    preview = browser.post(
        "/settings/templates",
        data={"csrf_token": token, "yaml": TEMPLATE, "action": "preview", "channel": "email"},
    )
    assert preview.status_code == 200
    assert "<strong>Subject:</strong> Thanks Ana" in preview.text
    assert "Thank you, Ana!" in preview.text  # inside the sandboxed iframe's srcdoc
    assert 'sandbox=""' in preview.text
    saved = browser.post(
        "/settings/templates", data={"csrf_token": token, "yaml": TEMPLATE, "action": "save"}
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/settings/templates/thanks"
    assert "Thank you" in browser.get("/settings/templates/thanks").text
    injected = TEMPLATE.replace("Thank you", "{{ ''.__class__.__mro__ }}")
    refused = browser.post(
        "/settings/templates", data={"csrf_token": token, "yaml": injected, "action": "save"}
    )
    assert refused.status_code == 400 and "email.html" in refused.text
    assert (
        "__mro__"
        not in (site.settings.home / "templates" / site.a.workspace_id / "thanks.yaml").read_text()
    )
    broken = browser.post(
        "/settings/templates", data={"csrf_token": token, "yaml": "name: [", "action": "save"}
    )
    assert broken.status_code == 400 and "YAML" in broken.text
    # Workspace b neither sees nor deletes it.
    other = site.browser(site.b)
    assert other.get("/settings/templates/thanks").status_code == 404
    assert (
        other.post(
            "/settings/templates/thanks/delete", data={"csrf_token": site.csrf(other, "/settings")}
        ).status_code
        == 404
    )
    deleted = browser.post("/settings/templates/thanks/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert browser.get("/settings/templates/thanks").status_code == 404
