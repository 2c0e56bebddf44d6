"""Event logs for the journey-analytics tests: declarative rows, random logs, and loaders.

A log is a list of event-row dicts (the :mod:`wayline.events.schema` contract). The random logs
are built to hit the hard cases on purpose: few distinct timestamps (ties), few event names
(repeated steps), events with and without ``session_id``, and anonymous visitors who merge into
an identified customer (their ``person_id`` is the resolved one, as identity resolution leaves it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from wayline.analytics.backend import DuckDBBackend, PostgresBackend
from wayline.storage.eventstore import EventStore, rows_to_arrow

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
WORKSPACE = "default"
_ids = itertools.count()


def ev(
    person: str,
    event: str,
    ts: datetime,
    *,
    session_id: str | None = None,
    page_path: str | None = None,
    revenue: Decimal | str | None = None,
    anonymous_id: str | None = None,
    user_id: str | None = None,
    workspace_id: str = WORKSPACE,
    message_id: str | None = None,
) -> dict[str, Any]:
    """One event row; ``person`` is the resolved ``person_id``."""
    return {
        "workspace_id": workspace_id,
        "message_id": message_id or f"m{next(_ids):08d}",
        "type": "page" if event == "$page" else "track",
        "event": event,
        "user_id": user_id,
        "anonymous_id": anonymous_id if anonymous_id is not None else (None if user_id else person),
        "person_id": person,
        "timestamp": ts,
        "received_at": ts,
        "session_id": session_id,
        "page_path": page_path,
        "revenue": Decimal(revenue) if revenue is not None else None,
        "currency": "EUR" if revenue is not None else None,
        "source": "test",
    }


EVENT_NAMES = ("a", "b", "c", "$page", "Order Completed")
PAGES = ("/", "/product/1", "/product/22", "/cart")


@st.composite
def event_logs(draw: st.DrawFn, *, max_events: int = 40, days: int = 1) -> list[dict[str, Any]]:
    """A random log of a few persons, full of ties, repeats and merged identities."""
    n_people = draw(st.integers(1, 5))
    # Each person is a user id plus 0–2 anonymous ids that merged into it.
    merged = {
        f"u{i}": [f"anon{i}_{k}" for k in range(draw(st.integers(0, 2)))] for i in range(n_people)
    }
    # Few distinct offsets (in minutes) so that ties and 30-minute gaps are both common.
    offsets = st.sampled_from([0, 0, 1, 5, 29, 30, 31, 45, 90, 24 * 60, 3 * 24 * 60])
    rows: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, max_events))):
        person = draw(st.sampled_from(sorted(merged)))
        alias = draw(st.sampled_from([None, *merged[person]]))
        event = draw(st.sampled_from(EVENT_NAMES))
        day = draw(st.integers(0, days - 1)) if days > 1 else 0
        ts = (
            T0
            + timedelta(days=day, minutes=draw(offsets))
            + timedelta(seconds=draw(st.sampled_from([0, 0, 7])))
        )
        rows.append(
            ev(
                person,
                event,
                ts,
                session_id=draw(st.sampled_from([None, None, "s1", "s2"])),
                page_path=draw(st.sampled_from(PAGES)) if event == "$page" else None,
                revenue=draw(st.sampled_from(["10.00", "19.99", "0.01"]))
                if event == "Order Completed"
                else None,
                anonymous_id=alias,
                user_id=None if alias else person,
            )
        )
    return rows


def duckdb_backend(rows: Sequence[dict[str, Any]]) -> DuckDBBackend:
    """A fresh in-memory event store holding ``rows``."""
    store = EventStore(":memory:")
    if rows:
        store.append_rows(rows)
    return DuckDBBackend(store.con)


@contextmanager
def postgres_backend(
    sqlalchemy_url: str, *, time_zone: str = "UTC"
) -> Iterator[tuple[PostgresBackend, Any]]:
    """A PostgresBackend on the fixture's schema with an empty ``events`` table; yields
    (backend, load) where ``load(rows)`` replaces the table's rows (COPY, as in production).
    ``time_zone`` is the session's: the analytics must not depend on it."""
    import psycopg

    from wayline.storage.pg_events import copy_arrow, create_events_table, psycopg_url

    conn = psycopg.connect(psycopg_url(sqlalchemy_url), autocommit=True)
    conn.execute(f"SET TIME ZONE '{time_zone}'")
    create_events_table(conn)

    def load(rows: Sequence[dict[str, Any]]) -> None:
        conn.execute("TRUNCATE events")
        copy_arrow(conn, rows_to_arrow(rows))

    try:
        yield PostgresBackend(conn), load
    finally:
        conn.close()


def random_log(
    seed: int, *, events: int = 3000, people: int = 120, days: int = 120
) -> list[dict[str, Any]]:
    """A larger seeded random log (for backend parity), with the same hard cases as
    :func:`event_logs`: whole-minute timestamps (ties), repeats, merged anonymous ids."""
    import random

    rnd = random.Random(seed)
    rows = []
    for _ in range(events):
        person = f"u{rnd.randrange(people)}"
        alias = rnd.choice([None, None, f"anon-{person}"])
        event = rnd.choice(EVENT_NAMES)
        ts = T0 + timedelta(days=rnd.randrange(days), minutes=rnd.randrange(0, 24 * 60, 7))
        rows.append(
            ev(
                person,
                event,
                ts,
                session_id=rnd.choice([None, None, None, f"s{rnd.randrange(3)}"]),
                page_path=rnd.choice(PAGES) if event == "$page" else None,
                revenue=rnd.choice(["10.00", "19.99", "120.50"])
                if event == "Order Completed"
                else None,
                anonymous_id=alias,
                user_id=None if alias else person,
            )
        )
    return rows


class SqlOnly:
    """A backend that only runs SQL: the funnel and paths then take their SQL formulation
    instead of the one-pass fast path (which needs ``fetch_arrow``), for comparing the two."""

    dialect = "duckdb"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def fetch(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self.inner.fetch(sql, params)  # type: ignore[no-any-return]
