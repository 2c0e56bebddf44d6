"""Shared helpers for the runtime tests: a journey document, a settable clock, seeding."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from wayline.channels.base import OutboundMessage, Outcome, SendResult
from wayline.storage.db import Database
from wayline.storage.journey_models import MessageLogRow
from wayline.storage.models import CustomerProfile

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Paris: no quiet hours


def series(
    delay: str = "1h", sends: int = 2, goal: bool = True, jid: str = "series"
) -> dict[str, Any]:
    """send → delay → send … (``sends`` messages), triggered by ``Signed Up``."""
    steps: list[dict[str, Any]] = []
    for i in range(sends):
        last = i == sends - 1
        steps.append(
            {"id": f"send_{i}", "type": "send", "channel": "email", "template": "welcome",
             "next": None if last else f"wait_{i}"}
        )  # fmt: skip
        if not last:
            steps.append(
                {"id": f"wait_{i}", "type": "delay", "duration": delay, "next": f"send_{i + 1}"}
            )
    doc: dict[str, Any] = {
        "id": jid,
        "name": "Series",
        "trigger": {"event": "Signed Up"},
        "steps": steps,
    }
    if goal:
        doc["goal"] = {"event": "Order Completed", "within": "1s"}
    return doc


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def track(person: str, event: str, at: datetime, **props: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "userId": person,
        "timestamp": at.isoformat(),
        "properties": props,
        "messageId": uuid.uuid4().hex,
    }


def add_profiles(
    db: Database, people: Sequence[str], *, workspace: str = "default", consent: bool = True,
    timezone: str | None = "Europe/Paris", at: datetime = T0,
) -> None:  # fmt: skip
    rows = [
        {"workspace_id": workspace, "person_id": p, "email": f"{p}@example.com",
         "consent": {"email": consent}, "traits": {}, "timezone": timezone,
         "first_seen": at, "last_seen": at}
        for p in people
    ]  # fmt: skip
    for i in range(0, len(rows), 5000):
        with db.write() as conn:
            conn.execute(insert(CustomerProfile), rows[i : i + 5000])


def logged_messages(db: Database) -> list[tuple[str, str]]:
    """(person, idempotency key) of every message the log channel kept."""
    with db.read() as conn:
        return [
            (r.person_id, r.idempotency_key)
            for r in conn.execute(select(MessageLogRow.person_id, MessageLogRow.idempotency_key))
        ]


def count(db: Database, table: Any, *where: Any) -> int:
    with db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


class Provider:
    """A provider's channel (not kept in the store, so the deliverer sends): whom it sent to,
    in order, and when (``time.monotonic``)."""

    in_store = False

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.sent_at: list[float] = []

    async def send(self, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        self.sent.append(message.customer_id)
        self.sent_at.append(time.monotonic())
        return SendResult(Outcome.DELIVERED, idempotency_key, provider_message_id="p1")
