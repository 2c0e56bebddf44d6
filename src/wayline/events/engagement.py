"""Names of the events a sent message brings back: opens, clicks, reads, replies, failures.

One vocabulary for the channels that emit these events and the journeys that wait for them. A
journey names an *action* of a channel (``opened``, ``read``, ``replied``…); the event stored on
the customer's timeline has the name below and carries the message's ``message_id``:

| action        | event name                                  |
| ------------- | ------------------------------------------- |
| delivered, opened, clicked, read, bounced, sent | ``<channel>_<action>`` (``email_opened``) |
| replied       | ``<channel>_reply`` (``whatsapp_reply``)    |
| failed        | ``message_failed`` (channel in properties)  |
| unsubscribed  | ``unsubscribed`` (channel in properties)    |
"""

from __future__ import annotations

#: What each channel reports back about a message, as actions a journey can wait for.
CHANNEL_ACTIONS: dict[str, tuple[str, ...]] = {
    "email": ("delivered", "opened", "clicked", "bounced", "unsubscribed"),
    "whatsapp": ("delivered", "read", "replied", "failed"),
    "sms": ("delivered", "clicked", "replied", "failed"),
}

FAILED_EVENT = "message_failed"
UNSUBSCRIBED_EVENT = "unsubscribed"
_SHARED = {"failed": FAILED_EVENT, "unsubscribed": UNSUBSCRIBED_EVENT}


def engagement_event(channel: str, action: str) -> str:
    """The event name of an action on a message: ``("email", "opened")`` → ``email_opened``."""
    if action in _SHARED:
        return _SHARED[action]
    if action == "replied":
        return f"{channel}_reply"
    return f"{channel}_{action}"


def engagement_action(event: str) -> str | None:
    """The action an engagement event reports (inverse of :func:`engagement_event`), else None."""
    for action, name in _SHARED.items():
        if event == name:
            return action
    channel, sep, rest = event.partition("_")
    if not sep or channel not in CHANNEL_ACTIONS:
        return None
    return "replied" if rest == "reply" else rest
