"""The mover: inbox → DuckDB exactly once, profiles from identify calls, identities resolved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore
from wayline.storage.models import CustomerProfile, InboxEvent
from wayline.storage.mover import Mover, profile_updates

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wayline.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    database.ensure_default_workspace()
    yield database
    database.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.duckdb") as s:
        yield s


def _track(i: int, user: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "userId": user, "messageId": f"t{i}", **extra}


class Crash(Exception):
    pass


def test_moves_each_event_once(db: Database, store: EventStore) -> None:
    db.accept("default", [_track(i) for i in range(25)], NOW)
    mover = Mover(db, store, batch_size=10)
    assert [mover.move_batch() for _ in range(4)] == [10, 10, 5, 0]
    assert store.count("default") == 25
    assert db.inbox_count(pending=True) == 0
    with db.read() as conn:
        assert conn.scalars(select(InboxEvent.payload)).all() == [None] * 25
    # A retry arriving after the move is still recognised: stored once, ever.
    assert db.accept("default", [_track(3)], NOW + timedelta(hours=1)) == 0
    assert mover.drain() == 0
    assert store.count() == 25


def test_crash_between_duckdb_and_marking_moves_once(
    db: Database, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.accept("default", [_track(i) for i in range(20)], NOW)
    db.accept("default", [_track(i) for i in range(20, 30)], NOW + timedelta(seconds=1))
    mover = Mover(db, store, batch_size=15)
    real_mark = Mover._mark_moved

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash

    monkeypatch.setattr(Mover, "_mark_moved", crash)
    with pytest.raises(Crash):
        mover.move_batch()
    assert store.count() == 15  # in DuckDB…
    assert db.inbox_count(pending=True) == 30  # …but not marked
    monkeypatch.setattr(Mover, "_mark_moved", real_mark)
    assert mover.drain() == 30
    assert store.count() == 30
    ids = store.con.execute("SELECT message_id FROM events ORDER BY message_id").fetchall()
    assert sorted(r[0] for r in ids) == sorted(f"t{i}" for i in range(30))


def test_failed_duckdb_append_leaves_inbox_pending(
    db: Database, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.accept("default", [_track(i) for i in range(5)], NOW)
    mover = Mover(db, store)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise Crash

    monkeypatch.setattr(Mover, "_append_to_analytics", broken)
    with pytest.raises(Crash):
        mover.move_batch()
    assert db.inbox_count(pending=True) == 5
    monkeypatch.undo()
    assert mover.drain() == 5 and store.count() == 5


def test_profiles_from_identify(db: Database, store: EventStore) -> None:
    t0 = NOW
    db.accept(
        "default",
        [
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "i1",
                "timestamp": t0.isoformat(),
                "traits": {"email": "ann@example.com", "name": "Ann Lee", "plan": "free"},
                "context": {"timezone": "Europe/Lisbon"},
            },
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "i2",
                "timestamp": (t0 + timedelta(minutes=5)).isoformat(),
                "traits": {"phone": "+351900000000", "consent": {"whatsapp": True}},
            },
            _track(1, timestamp=(t0 + timedelta(minutes=9)).isoformat()),
        ],
        NOW,
    )
    mover = Mover(db, store)
    mover.move_batch()
    db.accept(
        "default",
        [
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "i3",
                "timestamp": (t0 + timedelta(days=1)).isoformat(),
                "traits": {"plan": "pro", "consent": {"email": False}},
            },
            _track(2, timestamp=(t0 + timedelta(days=2)).isoformat()),
            _track(3, user="stranger"),
        ],
        NOW,
    )
    mover.move_batch()
    with db.read() as conn:
        profiles = conn.execute(select(CustomerProfile)).all()
    assert len(profiles) == 1  # only identified persons get a profile
    p = profiles[0]
    assert (p.person_id, p.email, p.phone, p.first_name, p.last_name, p.timezone) == (
        "u1",
        "ann@example.com",
        "+351900000000",
        "Ann",
        "Lee",
        "Europe/Lisbon",
    )
    assert p.consent == {"whatsapp": True, "email": False}
    assert p.traits["plan"] == "pro" and p.traits["name"] == "Ann Lee"
    assert p.first_seen == t0
    assert p.last_seen == t0 + timedelta(days=2)


def test_identities_are_resolved_after_each_batch(db: Database, store: EventStore) -> None:
    db.accept(
        "default",
        [
            {"type": "track", "event": "Viewed", "anonymousId": "anon-1", "messageId": "a1"},
            {
                "type": "identify",
                "userId": "u9",
                "anonymousId": "anon-1",
                "messageId": "a2",
                "timestamp": (NOW + timedelta(minutes=1)).isoformat(),
            },
        ],
        NOW,
    )
    Mover(db, store).move_batch()
    persons = store.con.execute("SELECT DISTINCT person_id FROM events").fetchall()
    assert persons == [("u9",)]


def test_profile_updates_is_pure_and_latest_wins() -> None:
    rows = [
        {
            "workspace_id": "w",
            "person_id": "p",
            "type": "identify",
            "timestamp": NOW + timedelta(minutes=m),
            "traits": {"email": email},
            "context": {},
        }
        for m, email in ((5, "new@x.io"), (1, "old@x.io"))
    ]
    upd = profile_updates(rows)[("w", "p")]
    assert upd.contact["email"] == "new@x.io"
    assert (upd.first_seen, upd.last_seen) == (
        NOW + timedelta(minutes=1),
        NOW + timedelta(minutes=5),
    )
