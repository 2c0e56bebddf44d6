"""Declarative event logs for the journey-map tests: "this customer did these events then"."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from wayline.analytics.backend import DuckDBBackend
from wayline.storage.eventstore import EventStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)
_counter = iter(range(1_000_000_000))


def ev(
    person: str,
    event: str,
    minutes: float,
    *,
    device: str | None = "mobile",
    channel: str | None = "direct",
    page: str | None = None,
    revenue: str | None = None,
    country: str | None = "DE",
    session: str | None = None,
    traits: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One event row of ``person`` at ``T0 + minutes``."""
    ts = T0 + timedelta(minutes=minutes)
    name = event
    return {
        "workspace_id": "default",
        "message_id": f"m{next(_counter)}",
        "type": "page" if event == "$page" else "identify" if event == "$identify" else "track",
        "event": name,
        "user_id": None,
        "anonymous_id": person,
        "person_id": person,
        "timestamp": ts,
        "received_at": ts,
        "session_id": session or f"{person}-s",
        "device_type": device,
        "os": None,
        "channel": channel,
        "country": country,
        "page_path": page,
        "revenue": Decimal(revenue) if revenue is not None else None,
        "currency": "EUR" if revenue is not None else None,
        "properties": properties or {},
        "traits": traits or {},
        "context": {},
        "source": "test",
    }


def journey(person: str, start: float, steps: Iterable[str], **kw: Any) -> list[dict[str, Any]]:
    """``person`` does ``steps`` one minute apart from ``start``; ``$page:/path`` is a page
    view of that path; ``Order Completed=12.50`` an order of that amount."""
    rows = []
    for i, step in enumerate(steps):
        extra: dict[str, Any] = dict(kw)
        name = step
        if step.startswith("$page:"):
            name, extra["page"] = "$page", step.split(":", 1)[1]
        elif "=" in step:
            name, extra["revenue"] = step.split("=", 1)
        rows.append(ev(person, name, start + i, **extra))
    return rows


def open_store(tmp_path: Path, rows: list[dict[str, Any]]) -> tuple[EventStore, DuckDBBackend]:
    store = EventStore(tmp_path / "events.duckdb")
    store.append_rows(rows)
    return store, DuckDBBackend(store.con)


def small_store_rows() -> list[dict[str, Any]]:
    """Four customers of a small shop (see ``test_map_build.py`` for what the map must say)."""
    rows: list[dict[str, Any]] = []
    rows += journey(
        "p1",
        0,
        [
            "$page:/",
            "$page:/products/a",
            "Product Viewed",
            "Product Added",
            "Checkout Started",
            "$identify",
            "Payment Info Entered",
            "Order Completed=10.00",
        ],
        device="mobile",
        channel="social",
    )
    rows.append(ev("p1", "Order Delivered", 60 * 24 * 2, device=None, channel="direct"))
    rows += journey("p1", 60 * 24 * 3, ["Product Viewed", "Order Completed=20.00"], channel="email")
    rows.append(ev("p1", "Product Reviewed", 60 * 24 * 4, device=None))
    rows += journey(
        "p2", 10, ["$page:/", "Product Viewed", "Product Added"], device="desktop", channel="search"
    )
    rows += journey("p3", 20, ["$page:/"], device="mobile", channel="ads")
    rows += journey(
        "p4",
        30,
        ["$page:/", "Product Viewed", "Size Chart Opened"],
        device="desktop",
        channel="direct",
    )
    return rows
