from datetime import UTC, datetime
from decimal import Decimal

import pytest

from wayline.errors import InputError
from wayline.events.normalize import classify_channel, normalize, normalize_values
from wayline.events.schema import EVENT_COLUMNS

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


def test_normalize_values_are_the_row_in_column_order() -> None:
    message = {
        "type": "identify",
        "userId": "u1",
        "anonymousId": "a1",
        "messageId": "m1",
        "traits": {"email": "a@example.com"},
        "properties": {"path": "/cart", "session_id": 7},
        "context": {"page": {"referrer": "https://www.instagram.com/"}, "sessionId": ""},
    }
    row = normalize(message, workspace_id="w", received_at=NOW, source="import")
    values = normalize_values(message, workspace_id="w", received_at=NOW, source="import")
    assert values == tuple(row[name] for name in EVENT_COLUMNS)
    assert (row["channel"], row["session_id"], row["page_path"]) == ("social", "7", "/cart")
    # The row's JSON columns are copies; the values are the message's own mappings.
    assert row["traits"] is not message["traits"]
    assert values[list(EVENT_COLUMNS).index("traits")] is message["traits"]


@pytest.mark.parametrize(
    "campaign, referrer, channel",
    [
        ({"source": 5, "medium": "cpc"}, None, "ads"),
        ({"source": ["google"], "medium": {"a": 1}}, "https://www.google.com/", "search"),
        ({"source": None}, 42, "direct"),
    ],
)
def test_campaign_fields_that_are_not_text_count_as_absent(
    campaign: dict[str, object], referrer: object, channel: str
) -> None:
    # Not checked when a message is received: normalising must not fail on them (the mover
    # would stop at such a message).
    context = {"campaign": campaign, "page": {"referrer": referrer}}
    message = {"type": "track", "event": "E", "userId": "u", "messageId": "m", "context": context}
    assert normalize(message, workspace_id="w", received_at=NOW)["channel"] == channel
