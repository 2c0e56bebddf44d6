from datetime import UTC, datetime
from decimal import Decimal

import pytest

from wayline.errors import InputError
from wayline.events.normalize import classify_channel, normalize

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_track_call_lifts_columns() -> None:
    row = normalize(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "u1",
            "messageId": "m1",
            "timestamp": "2026-10-31T10:00:00+02:00",
            "properties": {"total": "19.999", "currency": "EUR"},
            "context": {
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile",
                "campaign": {"source": "google", "medium": "cpc"},
                "location": {"country": "PT"},
            },
        },
        workspace_id="w",
        received_at=NOW,
    )
    assert row["timestamp"] == datetime(2026, 10, 31, 8, 0, tzinfo=UTC)
    assert row["revenue"] == Decimal("20.00")
    assert (row["device_type"], row["os"], row["channel"], row["country"]) == (
        "mobile",
        "iOS",
        "ads",
        "PT",
    )
    assert row["person_id"] == "u1"


def test_page_call_is_named() -> None:
    row = normalize(
        {"type": "page", "anonymousId": "a", "messageId": "m", "name": "Home"},
        workspace_id="w",
        received_at=NOW,
    )
    assert row["event"] == "$page"
    assert row["timestamp"] == NOW
    assert row["channel"] == "direct"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "track", "event": "x", "messageId": "m"}, "userId"),
        ({"type": "track", "userId": "u", "messageId": "m"}, "event"),
        ({"type": "nope", "userId": "u", "messageId": "m"}, "type"),
        (
            {"type": "track", "event": "x", "userId": "u", "messageId": "m", "timestamp": "soon"},
            "timestamp",
        ),
        (
            {"type": "track", "event": "x", "userId": "u", "messageId": "m", "properties": [1]},
            "properties",
        ),
    ],
)
def test_bad_messages_name_the_field(message: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as info:
        normalize(message, workspace_id="w", received_at=NOW)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("source", "medium", "referrer", "channel"),
    [
        ("facebook", "cpc", None, "ads"),
        ("instagram", None, None, "social"),
        ("newsletter", "email", None, "email"),
        ("whatsapp", "message", None, "whatsapp"),
        (None, None, "https://www.google.com/", "search"),
        (None, None, "https://blog.example.org/post", "referral"),
        (None, None, None, "direct"),
    ],
)
def test_classify_channel(
    source: str | None, medium: str | None, referrer: str | None, channel: str
) -> None:
    assert classify_channel(source, medium, referrer) == channel
