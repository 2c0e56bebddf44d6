"""Email over a real SMTP server (aiosmtpd on 127.0.0.1), asserting on what it received."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from wayline.channels import (
    ChannelKind,
    EmailChannel,
    InMemoryAttemptLog,
    LinkSigner,
    MessageRef,
    Outcome,
    SmtpSettings,
    compose,
)
from wayline.channels.email import message_id_for
from wayline.channels.templates import TemplateLibrary
from wayline.channels.templates.context import SAMPLE_EVENTS, SAMPLE_STORE
from wayline.channels.tracking import CLICK, verify_token

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@dataclass
class Recorder:
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"shop", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1 (the test server's STARTTLS)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test server's certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture
def smtp(certificate: Path) -> Iterator[tuple[Recorder, int]]:
    """A real SMTP server: STARTTLS required before AUTH, AUTH required before mail."""
    recorder = Recorder()
    port = _free_port()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        authenticator=_auth,
        auth_required=True,
        tls_context=tls,
        require_starttls=True,
    )
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


@pytest.fixture
def ca_file(certificate: Path) -> str:
    return str(certificate / "cert.pem")


def settings(port: int, ca: str, **kw: Any) -> SmtpSettings:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "from_address": "hello@casaverde.example",
        "from_name": "Casa Verde",
        "username": "shop",
        "password": "s3cret",
        "start_tls": True,
        "cert_bundle": ca,
        "timeout_seconds": 5.0,
    }
    return SmtpSettings(**{**base, **kw})


SIGNER = LinkSigner("https://t.casaverde.example", "ws-secret")
REF = MessageRef("msg_1", "ws_1", "cus_1", ChannelKind.EMAIL, journey_id="jrn_1")


def cart_message(to: str = "ana@example.com") -> Any:
    return compose(
        TemplateLibrary().get("abandoned_cart"),
        ref=REF,
        to=to,
        customer={"id": "cus_1", "first_name": "Ana", "email": to},
        store=SAMPLE_STORE,
        signer=SIGNER,
        now=NOW,
        event=SAMPLE_EVENTS["cart"],
        journey={"id": "jrn_1", "name": "Cart recovery"},
    )


def test_email_arrives_multipart_with_one_click_unsubscribe_and_stable_message_id(
    smtp: tuple[Recorder, int], ca_file: str
) -> None:
    recorder, port = smtp
    log = InMemoryAttemptLog()
    channel = EmailChannel(settings(port, ca_file), log=log, clock=lambda: NOW)

    async def go() -> None:
        first = await channel.send(cart_message(), idempotency_key="run-7:step-2")
        assert first.outcome is Outcome.DELIVERED, first
        again = await channel.send(cart_message(), idempotency_key="run-7:step-2")
        assert again.replayed

    asyncio.run(go())
    assert len(recorder.messages) == 1  # the retry with the same key sent nothing
    mail_from, rcpt, raw = recorder.messages[0]
    assert (mail_from, rcpt) == ("hello@casaverde.example", ["ana@example.com"])
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] == "Ana, your cart is waiting"
    assert msg["From"] == "Casa Verde <hello@casaverde.example>"
    assert msg["Message-ID"] == message_id_for("run-7:step-2", "hello@casaverde.example")
    assert msg["Message-ID"].endswith("@casaverde.example>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = msg["List-Unsubscribe"]
    assert unsub.startswith("<https://t.casaverde.example/u/") and unsub.endswith(">")
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    text_body, html_body = text.get_content(), html.get_content()
    assert "Linen shirt" in text_body and "<" not in text_body
    assert "Linen shirt" in html_body and "/t/o/" in html_body  # the open pixel
    # Links go through the signed click tracker and lead back to the product, with UTM tags.
    click = html_body.split('href="https://t.casaverde.example/t/c/', 1)[1].split('"', 1)[0]
    action = verify_token(click, kind=CLICK, secret="ws-secret", now=NOW)
    assert action.url is not None and action.url.startswith("https://casaverde.example/")
    assert "utm_medium=email" in action.url
    assert unsub[1:-1] in html_body  # the footer link is the same, and not click-tracked


def test_a_refused_recipient_is_permanent_and_a_busy_mailbox_retryable(
    smtp: tuple[Recorder, int], ca_file: str
) -> None:
    recorder, port = smtp
    recorder.refuse = {
        "gone@example.com": "550 5.1.1 No such user",
        "busy@example.com": "451 4.2.0 Mailbox busy, try later",
    }
    channel = EmailChannel(settings(port, ca_file), log=InMemoryAttemptLog(), clock=lambda: NOW)

    async def go() -> None:
        gone = await channel.send(cart_message("gone@example.com"), idempotency_key="a")
        busy = await channel.send(cart_message("busy@example.com"), idempotency_key="b")
        assert (gone.outcome, gone.error_code) == (Outcome.PERMANENT, "smtp_550")
        assert (busy.outcome, busy.error_code) == (Outcome.RETRYABLE, "smtp_451")

    asyncio.run(go())
    assert recorder.messages == []


def test_bad_credentials_are_permanent(smtp: tuple[Recorder, int], ca_file: str) -> None:
    _, port = smtp
    channel = EmailChannel(
        settings(port, ca_file, password="wrong"), log=InMemoryAttemptLog(), clock=lambda: NOW
    )
    result = asyncio.run(channel.send(cart_message(), idempotency_key="k"))
    assert (result.outcome, result.error_code) == (Outcome.PERMANENT, "smtp_535")


def test_plain_connection_to_a_server_requiring_starttls_fails_permanently(
    smtp: tuple[Recorder, int], ca_file: str
) -> None:
    _, port = smtp
    channel = EmailChannel(
        settings(port, ca_file, start_tls=False), log=InMemoryAttemptLog(), clock=lambda: NOW
    )
    result = asyncio.run(channel.send(cart_message(), idempotency_key="k"))
    assert result.outcome is Outcome.PERMANENT and result.error_code == "smtp_unsupported"


def test_an_unreachable_server_is_retryable_and_every_attempt_recorded() -> None:
    log = InMemoryAttemptLog()
    channel = EmailChannel(settings(_free_port(), ""), log=log, clock=lambda: NOW)

    async def go() -> None:
        await channel.send(cart_message(), idempotency_key="k")
        result = await channel.send(cart_message(), idempotency_key="k")
        assert result.outcome is Outcome.RETRYABLE and result.error_code == "smtp_connection"

    asyncio.run(go())
    assert [a.outcome for a in log.attempts("k")] == [Outcome.RETRYABLE] * 2
