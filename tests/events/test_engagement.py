import pytest

from wayline.events.engagement import CHANNEL_ACTIONS, engagement_action, engagement_event


@pytest.mark.parametrize(
    ("channel", "action", "name"),
    [
        ("email", "opened", "email_opened"),
        ("whatsapp", "read", "whatsapp_read"),
        ("whatsapp", "replied", "whatsapp_reply"),
        ("sms", "failed", "message_failed"),
        ("email", "unsubscribed", "unsubscribed"),
    ],
)
def test_names_follow_the_documented_vocabulary(channel: str, action: str, name: str) -> None:
    assert engagement_event(channel, action) == name


def test_every_action_round_trips() -> None:
    for channel, actions in CHANNEL_ACTIONS.items():
        for action in actions:
            assert engagement_action(engagement_event(channel, action)) == action


def test_other_events_are_not_engagements() -> None:
    assert engagement_action("Order Completed") is None
    assert engagement_action("product_viewed") is None
