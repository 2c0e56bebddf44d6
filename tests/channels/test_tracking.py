"""Signed tracking links, one-time unsubscribe tokens, and the events they become."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline.channels.base import ChannelKind, Outcome, SendResult
from wayline.channels.tracking import (
    CLICK,
    OPEN,
    UNSUBSCRIBE,
    InMemoryUsedTokens,
    InvalidToken,
    LinkSigner,
    MessageRef,
    TokenReplayed,
    make_token,
    redeem_unsubscribe,
    send_events,
    token_workspace,
    track_html,
    tracked_action_events,
    verify_token,
)
from wayline.events.schema import EVENT_COLUMNS

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "workspace-secret"
REF = MessageRef("msg_1", "ws_1", "cus_1", ChannelKind.EMAIL, journey_id="jrn_1", step_id="s2")
SIGNER = LinkSigner("https://t.shop.example", SECRET)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1].removesuffix(".gif")


def test_click_link_round_trip_names_customer_message_and_destination() -> None:
    url = SIGNER.click_url(REF, "https://shop.example/p/1?x=1", now=NOW)
    action = verify_token(token_of(url), kind=CLICK, secret=SECRET, now=NOW)
    assert action.ref == REF and action.url == "https://shop.example/p/1?x=1"


def test_a_forged_click_link_for_another_destination_is_rejected() -> None:
    # Swap the signed claims for ones pointing elsewhere (an open redirect attempt) while
    # keeping the MAC: the MAC no longer matches.
    good = token_of(SIGNER.click_url(REF, "https://shop.example/", now=NOW))
    evil = make_token(
        CLICK,
        REF,
        secret="attacker",
        expires_at=NOW + timedelta(days=1),
        url="https://evil.example/",
    )
    forged = evil.split(".")[0] + "." + good.split(".")[1]
    with pytest.raises(InvalidToken, match="signature"):
        verify_token(forged, kind=CLICK, secret=SECRET, now=NOW)
    with pytest.raises(InvalidToken, match="signature"):
        verify_token(evil, kind=CLICK, secret=SECRET, now=NOW)


def test_a_link_cannot_be_forged_for_another_customer_or_message() -> None:
    good = token_of(SIGNER.click_url(REF, "https://shop.example/", now=NOW))
    other = MessageRef("msg_2", "ws_1", "cus_2", ChannelKind.EMAIL)
    other_claims = make_token(
        CLICK, other, secret="?", expires_at=NOW + timedelta(days=365), url="https://shop.example/"
    ).split(".")[0]
    with pytest.raises(InvalidToken):
        verify_token(f"{other_claims}.{good.split('.')[1]}", kind=CLICK, secret=SECRET, now=NOW)


def test_another_workspaces_secret_does_not_verify() -> None:
    token = token_of(SIGNER.open_url(REF, now=NOW))
    assert token_workspace(token) == "ws_1"  # the secret to look up, before verifying
    assert token_workspace("garbage") is None
    with pytest.raises(InvalidToken):
        verify_token(token, kind=OPEN, secret="another-workspace", now=NOW)


def test_a_token_of_one_kind_is_not_accepted_as_another() -> None:
    open_token = token_of(SIGNER.open_url(REF, now=NOW))
    with pytest.raises(
        InvalidToken, match="wrong kind of tracking token: open, expected unsubscribe"
    ):
        verify_token(open_token, kind=UNSUBSCRIBE, secret=SECRET, now=NOW)


def test_expired_tokens_are_rejected() -> None:
    token = token_of(SIGNER.click_url(REF, "https://shop.example/", now=NOW))
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(token, kind=CLICK, secret=SECRET, now=NOW + timedelta(days=366))


@given(st.data())
def test_any_change_to_a_token_breaks_it(data: st.DataObject) -> None:
    token = token_of(SIGNER.click_url(REF, "https://shop.example/", now=NOW))
    i = data.draw(st.integers(0, len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    c = data.draw(st.sampled_from(alphabet).filter(lambda ch: ch != token[i]))
    tampered = token[:i] + c + token[i + 1 :]
    # The MAC covers the claims' text as sent, so even a change base64 would decode to the
    # same bytes is refused.
    with pytest.raises(InvalidToken):
        verify_token(tampered, kind=CLICK, secret=SECRET, now=NOW)


def test_a_replayed_unsubscribe_token_is_rejected() -> None:
    used = InMemoryUsedTokens()
    token = token_of(SIGNER.unsubscribe_url(REF, now=NOW))
    action = redeem_unsubscribe(token, secret=SECRET, now=NOW, used=used)
    assert action.kind == "unsubscribe" and action.ref.customer_id == "cus_1"
    with pytest.raises(TokenReplayed):
        redeem_unsubscribe(token, secret=SECRET, now=NOW + timedelta(seconds=1), used=used)


def test_track_html_rewrites_web_links_only_and_adds_the_pixel() -> None:
    unsub = SIGNER.unsubscribe_url(REF, now=NOW)
    body = (
        '<html><body><a href="https://shop.example/p?a=1&amp;b=2">Shop</a>'
        '<a href="mailto:help@shop.example">Mail</a>'
        f'<a href="{unsub}">Unsubscribe</a></body></html>'
    )
    out = track_html(body, signer=SIGNER, ref=REF, now=NOW, skip=[unsub])
    hrefs = re.findall(r'href="([^"]*)"', out)
    assert hrefs[0].startswith("https://t.shop.example/t/c/")
    action = verify_token(hrefs[0].rsplit("/", 1)[1], kind=CLICK, secret=SECRET, now=NOW)
    assert action.url == "https://shop.example/p?a=1&b=2"
    assert hrefs[1:] == ["mailto:help@shop.example", unsub]
    assert re.search(r'<img src="https://t\.shop\.example/t/o/[^"]+\.gif"[^>]*></body>', out)


def test_tracked_actions_become_event_rows_linked_to_the_message() -> None:
    click = verify_token(
        token_of(SIGNER.click_url(REF, "https://shop.example/", now=NOW)),
        kind=CLICK,
        secret=SECRET,
        now=NOW,
    )
    [row] = tracked_action_events(click, at=NOW, received_at=NOW)
    assert set(row) == set(EVENT_COLUMNS)
    assert (row["event"], row["person_id"], row["workspace_id"]) == (
        "email_clicked",
        "cus_1",
        "ws_1",
    )
    assert row["properties"] == {
        "message_id": "msg_1",
        "channel": "email",
        "journey": "jrn_1",
        "step": "s2",
        "url": "https://shop.example/",
    }
    assert row["channel"] == "email"
    opened = verify_token(
        token_of(SIGNER.open_url(REF, now=NOW)), kind=OPEN, secret=SECRET, now=NOW
    )
    a = tracked_action_events(opened, at=NOW, received_at=NOW)[0]
    b = tracked_action_events(opened, at=NOW + timedelta(seconds=5), received_at=NOW)[0]
    assert a["event"] == "email_opened" and a["message_id"] == b["message_id"]  # deduplicated


def test_send_outcomes_become_events() -> None:
    ok = SendResult(Outcome.DELIVERED, "k1", provider_message_id="<x@y>")
    failed = SendResult(Outcome.PERMANENT, "k2", error_code="smtp_550", detail="no such user")
    later = SendResult(Outcome.RETRYABLE, "k3", error_code="timeout")
    assert [r["event"] for r in send_events(REF, ok, at=NOW, received_at=NOW)] == [
        "email_delivered"
    ]
    [row] = send_events(REF, failed, at=NOW, received_at=NOW)
    assert row["event"] == "message_failed" and row["properties"]["error_code"] == "smtp_550"
    assert send_events(REF, later, at=NOW, received_at=NOW) == []
    sms_ref = MessageRef("m", "ws", "c", ChannelKind.SMS)
    assert send_events(sms_ref, ok, at=NOW, received_at=NOW) == []
