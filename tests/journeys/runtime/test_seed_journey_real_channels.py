"""The seed journey end to end on real channels: a real SMTP server (aiosmtpd) for email, the
fake WhatsApp Cloud API (served over HTTP, in Meta's documented format) for WhatsApp, the
workspace's providers as the dashboard stores them, and the engagement endpoints for what
comes back.

Ana views the cream → the offer email arrives → its pixel is fetched → two days later the
WhatsApp reminder is sent → a signed ``read`` webhook arrives → the better-deal email follows.
Bob views it too, gets the offer, buys: nothing more is sent to him.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from aiosmtpd.controller import Controller
from runtime_support import Clock, track
from sqlalchemy import insert, select

from channels.fakes import FakeGraphAPI, signed_whatsapp, whatsapp_notification
from dashboard_fixtures import Site
from wayline.cli.worker import build_runtime
from wayline.storage.channel_config import ChannelConfigStore
from wayline.storage.journey_models import OutboxRow
from wayline.storage.models import CustomerProfile
from wayline.storage.secretbox import SecretBox

SEED = Path(__file__).parents[3] / "examples" / "journeys" / "skincare-offer.yaml"
# A weekday at 10:00 UTC (11:00 in Paris): outside quiet hours, so nothing is deferred.
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] and address in m["To"]]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def graph_api() -> Iterator[tuple[FakeGraphAPI, str]]:
    fake = FakeGraphAPI(token="EAAG-seed-token", phone_number_id="1234567890")
    config = uvicorn.Config(fake.app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake Graph API did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def test_seed_journey_on_real_smtp_and_the_whatsapp_api(
    site: Site, smtp: tuple[Inbox, int], graph_api: tuple[FakeGraphAPI, str]
) -> None:
    inbox, smtp_port = smtp
    fake, graph_url = graph_api
    ws = site.a.workspace_id
    clock = Clock(T0)
    site.app.state.clock = clock  # pixel and webhook events are stamped on the same clock
    providers = ChannelConfigStore(site.db, SecretBox.for_settings(site.settings))
    providers.put(ws, "email", {"host": "127.0.0.1", "port": smtp_port,
                                "from_address": "hello@casaverde.example"})  # fmt: skip
    providers.put(ws, "whatsapp", {"phone_number_id": "1234567890",
                                   "access_token": "EAAG-seed-token", "base_url": graph_url,
                                   "app_secret": "meta-s3cret"})  # fmt: skip
    with site.db.write() as conn:
        for person, phone in (("ana", "+351912345678"), ("bob", "+351911111111")):
            conn.execute(
                insert(CustomerProfile).values(
                    workspace_id=ws, person_id=person, email=f"{person}@example.com",
                    phone=phone, first_name=person.title(), timezone="Europe/Paris",
                    consent={"email": True, "whatsapp": True}, traits={},
                    first_seen=T0, last_seen=T0,
                )
            )  # fmt: skip
    runtime = build_runtime(site.db, site.settings)
    runtime.advancer.clock = clock
    runtime.deliverer.clock = clock
    runtime.catalog.publish(ws, yaml.safe_load(SEED.read_text()), source=SEED.name)
    site.db.forget_journey_workspaces()

    viewed = {"product_id": "skincare-cream", "name": "Skin-care cream"}
    site.db.accept(ws, [track(p, "Product Viewed", T0, **viewed) for p in ("ana", "bob")], T0)
    runtime.drain()
    [offer] = inbox.to("ana@example.com")
    assert len(inbox.to("bob@example.com")) == 1
    assert "10" in str(offer["Subject"]) or "10%" in _html(offer)

    # Ana opens the email: her mail client fetches the pixel from our server.
    pixel = re.search(r'src="http://127\.0\.0\.1:8000(/t/o/[^"]+\.gif)"', _html(offer))
    assert pixel, "the offer email carries the open pixel"
    clock.advance(hours=1)
    assert site.client.get(pixel.group(1)).status_code == 200
    # Bob buys: the goal ends his journey wherever he is.
    site.db.accept(ws, [track("bob", "Order Completed", clock.now, revenue=25)], clock.now)
    runtime.drain()

    clock.advance(days=2, minutes=5)
    runtime.drain()
    assert [m["to"] for m in fake.received] == ["351912345678"]
    with site.db.read() as conn:
        wamid = conn.scalar(
            select(OutboxRow.outcome).where(
                OutboxRow.channel == "whatsapp", OutboxRow.status == "sent"
            )
        )
    assert wamid and wamid.startswith("wamid.")

    # Meta reports the reminder read, signed with the app secret.
    clock.advance(hours=3)
    body = whatsapp_notification(
        statuses=[
            {
                "id": wamid,
                "status": "read",
                "recipient_id": "351912345678",
                "timestamp": str(int(clock.now.timestamp())),
            }
        ]
    )
    hook = f"/webhooks/whatsapp/{ws}"
    forged = site.client.post(hook, content=body, headers=signed_whatsapp(body, "not-it"))
    assert forged.status_code == 401
    ok = site.client.post(hook, content=body, headers=signed_whatsapp(body, "meta-s3cret"))
    assert ok.status_code == 200
    runtime.drain()

    _offer_again, better = inbox.to("ana@example.com")
    assert "20" in str(better["Subject"]) or "20%" in _html(better)
    assert len(inbox.to("bob@example.com")) == 1  # the purchase stopped him
    assert len(fake.received) == 1

    # Every message is listed with its status history, per customer and per step.
    listed = site.client.get("/api/v1/messages", params={"customer": "ana"}, headers=site.a.headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert sorted(m["step_id"] for m in items) == [
        "better_deal",
        "offer_email",
        "whatsapp_reminder",
    ]
