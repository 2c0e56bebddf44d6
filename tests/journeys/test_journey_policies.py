"""Send-time rules, each alone, and the policy that orders them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from wayline.journeys.engine import RecordKind, SendMessage
from wayline.journeys.policies import (
    DEFAULT_POLICY,
    FrequencyCap,
    QuietHours,
    Recipient,
    RequireConsent,
    RespectUnsubscribe,
    SendContext,
    SendPolicy,
    Verdict,
    delivery_record,
)

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
OK = {"consents": {"email": True, "whatsapp": True, "sms": True}}


def ctx(channel: str = "email", at: datetime = NOON, **traits: object) -> SendContext:
    recent = traits.pop("recent", ())
    return SendContext(
        channel, Recipient.from_traits("p", {**OK, **traits}, recent_sends=recent), at
    )  # type: ignore[arg-type]


def test_consent_is_per_channel_and_absent_means_no() -> None:
    rule = RequireConsent()
    assert rule.check(ctx()) is None
    assert rule.check(ctx(consents={"email": True})) is None
    decision = rule.check(ctx("whatsapp", consents={"email": True}))
    assert (
        decision is not None
        and decision.verdict is Verdict.SKIP
        and decision.reason == "no_consent"
    )
    assert (
        rule.check(SendContext("sms", Recipient.from_traits("p", {"sms_consent": True}), NOON))
        is None
    )


@pytest.mark.parametrize(
    ("traits", "channel", "skipped"),
    [
        ({"unsubscribed": True}, "sms", True),
        ({"unsubscribed": ["email"]}, "email", True),
        ({"unsubscribed": ["email"]}, "sms", False),
        ({"whatsapp_unsubscribed": True}, "whatsapp", True),
        ({}, "email", False),
    ],
)
def test_unsubscribe(traits: dict[str, object], channel: str, skipped: bool) -> None:
    assert (RespectUnsubscribe().check(ctx(channel, **traits)) is not None) is skipped


def test_frequency_cap_counts_recent_sends_across_journeys() -> None:
    cap = FrequencyCap(max_messages=2, per=timedelta(days=1))
    two = [NOON - timedelta(hours=1), NOON - timedelta(hours=5)]
    assert cap.check(ctx(recent=two)).reason == "frequency_cap"  # type: ignore[union-attr]
    old = [NOON - timedelta(hours=1), NOON - timedelta(days=2)]
    assert cap.check(ctx(recent=old)) is None


@pytest.mark.parametrize(
    ("utc_hour", "zone", "expected"),
    [
        (22, "Europe/Paris", datetime(2026, 3, 3, 7, 0, tzinfo=UTC)),  # 23:00 Paris → 08:00
        (6, "Europe/Paris", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),  # 07:00 Paris → 08:00
        (12, "Europe/Paris", None),
        (12, "Asia/Tokyo", datetime(2026, 3, 2, 23, 0, tzinfo=UTC)),  # 21:00 Tokyo → 08:00
    ],
)
def test_quiet_hours_defer_to_the_local_morning(
    utc_hour: int, zone: str, expected: datetime | None
) -> None:
    at = NOON.replace(hour=utc_hour)
    decision = QuietHours(time(21), time(8)).check(ctx(at=at, timezone=zone))
    if expected is None:
        assert decision is None
    else:
        assert decision is not None and decision.verdict is Verdict.DEFER
        assert decision.send_at == expected
        assert decision.send_at.astimezone(ZoneInfo(zone)).hour == 8


def test_policy_order_first_objection_wins_and_channels_are_scoped() -> None:
    late = NOON.replace(hour=23)
    decision = DEFAULT_POLICY.evaluate(ctx(at=late, unsubscribed=True))
    assert decision.reason == "unsubscribed"
    assert DEFAULT_POLICY.evaluate(ctx(at=late)).verdict is Verdict.DEFER
    sms_only = SendPolicy((QuietHours(channels=frozenset({"sms"})),))
    assert sms_only.evaluate(ctx("email", at=late)).verdict is Verdict.SEND
    assert sms_only.evaluate(ctx("sms", at=late)).verdict is Verdict.DEFER


def test_delivery_record_says_why() -> None:
    send = SendMessage("k", "m", "i", "j", 3, "p", "s", "sms", "t", {}, {}, NOON)
    decision = DEFAULT_POLICY.evaluate(ctx("sms", consents={}))
    rec = delivery_record(send, decision, NOON)
    assert (rec.kind, rec.outcome, rec.version, rec.step_id) == (
        RecordKind.SEND_SKIPPED,
        "no_consent",
        3,
        "s",
    )
