"""Helpers for the journey tests: declarative event rows and a scripted response model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from wayline.journeys.engine import SendMessage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Paris


def row(
    person: str,
    event: str,
    at: datetime,
    traits: Mapping[str, Any] | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """An event row of the :mod:`wayline.events.schema` shape (the parts the engine reads)."""
    return {
        "event": event,
        "person_id": person,
        "timestamp": at,
        "properties": dict(properties),
        "traits": dict(traits) if traits else None,
    }


def in_order(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["timestamp"])


@dataclass(frozen=True)
class ScriptedResponses:
    """Engagement decided per (person, send step): exactly the listed actions, after the
    listed delays from the send."""

    script: Mapping[tuple[str, str], Sequence[tuple[str, timedelta]]] = field(default_factory=dict)

    def responses(self, send: SendMessage) -> Sequence[tuple[str, timedelta]]:
        return self.script.get((send.person_id, send.step_id), ())
