"""The mover: inbox → DuckDB exactly once, profiles from identify calls, identities resolved."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore
from wayline.storage.journey_models import InputRow
from wayline.storage.models import CustomerProfile, InboxRequest
from wayline.storage.mover import Mover, profile_updates

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wayline.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
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


def _stored_ids(store: EventStore) -> list[str]:
    rows = store.con.execute("SELECT message_id FROM events ORDER BY message_id").fetchall()
    return [r[0] for r in rows]


def test_moves_each_event_once(db: Database, store: EventStore) -> None:
    for first, n in ((0, 10), (10, 10), (20, 5)):
        db.accept("default", [_track(i) for i in range(first, first + n)], NOW)
    mover = Mover(db, store, batch_size=10)
    assert [mover.move_batch() for _ in range(4)] == [10, 10, 5, 0]
    assert store.count("default") == 25
    assert db.inbox_count(pending=True) == 0
    with db.read() as conn:
        assert conn.scalars(select(InboxRequest.payload)).all() == [None] * 3
    # A retry arriving after the move is stored in the inbox, and dropped by the mover.
    assert db.accept("default", [_track(3)], NOW + timedelta(hours=1)) == 1
    assert mover.drain() == 1
    assert store.count() == 25


def test_a_batch_takes_whole_requests(db: Database, store: EventStore) -> None:
    db.accept("default", [_track(i) for i in range(30)], NOW)
    db.accept("default", [_track(i) for i in range(30, 35)], NOW)
    assert Mover(db, store, batch_size=10).move_batch() == 30
    assert store.count() == 30


@pytest.mark.parametrize("batch_size", [1, 2000])  # the copies in one batch, or in two
@pytest.mark.parametrize("claims", [2500, 3])  # the ids taken in one transaction, or in several
def test_a_retried_request_is_stored_once(
    db: Database, store: EventStore, batch_size: int, claims: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("wayline.storage.mover._CLAIMS_PER_TRANSACTION", claims)
    batch = [_track(i) for i in range(10)]
    db.accept("default", batch, NOW)
    db.accept("default", [*batch[5:], _track(10)], NOW + timedelta(seconds=3))  # a retry
    db.accept("other", batch[:2], NOW)  # ids are per workspace
    assert Mover(db, store, batch_size=batch_size).drain() == 18
    assert _stored_ids(store) == sorted([f"t{i}" for i in range(11)] + ["t0", "t1"])
    # The copy kept is the first received.
    late = store.con.execute("SELECT count(*) FROM events WHERE received_at > $1", [NOW]).fetchall()
    assert late == [(1,)]  # t10 only


@given(
    batches=st.lists(
        st.lists(st.integers(min_value=0, max_value=40), max_size=15), min_size=1, max_size=6
    ),
    batch_size=st.integers(min_value=1, max_value=30),
)
@settings(max_examples=25, deadline=None)
def test_each_message_id_is_stored_once_whatever_the_retries(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[int]], batch_size: int
) -> None:
    """Law: however the ids are re-sent and batched, the event store holds each one once."""
    folder = tmp_path_factory.mktemp("law")
    with (
        Database(f"sqlite:///{folder / 'w.sqlite3'}") as db,
        EventStore(folder / "events.duckdb") as store,
    ):
        for batch in batches:
            db.accept("default", [_track(i) for i in batch], NOW)
        Mover(db, store, batch_size=batch_size).drain()
        assert _stored_ids(store) == sorted({f"t{i}" for batch in batches for i in batch})


def test_ids_taken_on_arrival_for_live_journeys_keep_their_copy(
    db: Database, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.accept("default", [_track(1), _track(2)], NOW)  # no live journey yet: ids not taken
    monkeypatch.setattr(db, "journey_workspaces", lambda: frozenset({"default"}))
    # A journey went live: a retry of t2 arrives with t3; both are new to the journeys.
    assert db.accept("default", [_track(2), _track(3)], NOW + timedelta(seconds=1)) == 2
    assert db.accept("default", [_track(3)], NOW + timedelta(seconds=2)) == 0  # known now
    with db.read() as conn:
        queued = conn.scalars(select(InputRow.payload)).all()
    assert sorted(orjson.loads(p)["messageId"] for p in queued) == ["t2", "t3"]
    Mover(db, store).drain()
    assert _stored_ids(store) == ["t1", "t2", "t3"]
    # t2 is the copy queued for the journeys: the second request's.
    received = store.con.execute(
        "SELECT received_at FROM events WHERE message_id = 't2'"
    ).fetchall()
    assert received == [(NOW + timedelta(seconds=1),)]


def test_crash_between_duckdb_and_marking_moves_once(
    db: Database, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(0, 30, 5):
        db.accept("default", [_track(j) for j in range(i, i + 5)], NOW + timedelta(seconds=i))
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
    db.accept("default", [_track(i) for i in range(3, 8)], NOW)  # t3, t4 again
    mover = Mover(db, store)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise Crash

    monkeypatch.setattr(Mover, "_append_to_analytics", broken)
    with pytest.raises(Crash):
        mover.move_batch()  # the ids were taken, nothing was appended
    assert db.inbox_count(pending=True) == 10
    monkeypatch.undo()
    assert mover.drain() == 10
    assert _stored_ids(store) == [f"t{i}" for i in range(8)]


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


def test_migration_0006_carries_the_old_inbox_over(db_url: str, store: EventStore) -> None:
    """Events acknowledged into the per-event inbox (before 0006) are moved once, after it."""
    from alembic import command
    from alembic.config import Config

    from wayline.storage import db as db_module

    old = Database(db_url, migrate=False)
    cfg = Config()
    cfg.set_main_option("script_location", str(db_module._MIGRATIONS))
    with old.write() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    rows = [  # pending, moved, left aside (moved with its payload kept)
        ("t1", orjson.dumps(_track(1)).decode(), None),
        ("t2", None, NOW),
        ("t3", orjson.dumps(_track(3)).decode(), NOW),
    ]
    with old.write() as conn:
        conn.execute(
            text(
                "INSERT INTO inbox (workspace_id, message_id, received_at, payload, moved_at) "
                "VALUES ('default', :m, :at, :p, :moved)"
            ),
            [{"m": m, "at": NOW, "p": p, "moved": moved} for m, p, moved in rows],
        )
    old.close()
    with Database(db_url) as db:
        assert db.inbox_count() == 3 and db.inbox_count(pending=True) == 1
        # Retries of all three, and a new event: only t1 (once) and t4 are stored.
        db.accept("default", [_track(i) for i in (1, 2, 3, 4)], NOW + timedelta(minutes=1))
        assert Mover(db, store).drain() == 5
        assert _stored_ids(store) == ["t1", "t4"]
        with db.read() as conn:
            kept = conn.scalars(
                select(InboxRequest.payload).where(InboxRequest.payload.is_not(None))
            ).all()
        assert [orjson.loads(p) for p in kept] == [[_track(3)]]


def test_a_message_that_no_longer_normalises_is_left_aside_and_can_be_replayed(
    db: Database, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wayline.errors import InputError
    from wayline.storage import mover as mover_module

    real = mover_module.normalize_values

    def stricter(message: dict[str, Any], **kwargs: Any) -> tuple[Any, ...]:
        if message["messageId"] == "t1":  # as if the rules had changed since it was accepted
            raise InputError("no longer valid", field="event")
        return real(message, **kwargs)

    db.accept("default", [_track(0), _track(1), _track(2)], NOW)
    monkeypatch.setattr(mover_module, "normalize_values", stricter)
    mover = Mover(db, store)
    assert mover.drain() == 3
    assert _stored_ids(store) == ["t0", "t2"]  # the others are moved
    assert db.inbox_count(pending=True) == 0
    with db.read() as conn:
        [kept] = conn.scalars(
            select(InboxRequest.payload).where(InboxRequest.payload.is_not(None))
        ).all()
    monkeypatch.undo()
    # Replayed by hand once the rules are fixed: only the message left aside is new.
    db.accept("default", orjson.loads(kept), NOW + timedelta(hours=1))
    assert mover.drain() == 3
    assert _stored_ids(store) == ["t0", "t1", "t2"]


def test_after_a_crash_a_smaller_batch_still_moves_each_event_once(
    db: Database, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(0, 30, 5):
        db.accept("default", [_track(j) for j in range(i, i + 5)], NOW + timedelta(seconds=i))
    mover = Mover(db, store, batch_size=20)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(Mover, "_mark_moved", crash)
        with pytest.raises(Crash):
            mover.move_batch()
    assert store.count() == 20
    # The next batches take fewer requests than the one appended: each finds its own.
    assert [mover.move_batch(5) for _ in range(7)] == [5, 5, 5, 5, 5, 5, 0]
    assert _stored_ids(store) == sorted(f"t{i}" for i in range(30))


def test_an_event_store_that_outlived_its_inbox_takes_the_new_inbox_requests(
    tmp_path: Path, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crash left a record of requests 1 and 2 as appended; then the operational store was
    # replaced, and its new requests 1 and 2 are other requests.
    with Database(f"sqlite:///{tmp_path / 'old.sqlite3'}") as old:
        old.accept("default", [_track(1)], NOW)
        old.accept("default", [_track(2)], NOW)
        with monkeypatch.context() as patch:
            patch.setattr(Mover, "_mark_moved", lambda *a, **k: (_ for _ in ()).throw(Crash))
            with pytest.raises(Crash):
                Mover(old, store).move_batch()
    with Database(f"sqlite:///{tmp_path / 'new.sqlite3'}") as new:
        new.accept("default", [_track(3)], NOW + timedelta(days=1))
        new.accept("default", [_track(4)], NOW + timedelta(days=1))
        assert Mover(new, store).drain() == 2
    assert _stored_ids(store) == ["t1", "t2", "t3", "t4"]


def test_last_seen_of_a_known_customer_only_moves_forward(db: Database, store: EventStore) -> None:
    identify = {"type": "identify", "userId": "u1", "messageId": "i1", "traits": {"plan": "pro"}}
    db.accept("default", [{**identify, "timestamp": NOW.isoformat()}], NOW)
    mover = Mover(db, store)
    mover.drain()
    later, earlier = NOW + timedelta(days=1, microseconds=1), NOW - timedelta(days=1)
    for i, at in enumerate((later, earlier)):
        db.accept("default", [_track(i, timestamp=at.isoformat()), _track(9, "u2")], NOW)
        mover.drain()
        with db.read() as conn:
            profiles = conn.execute(select(CustomerProfile)).all()
        assert [(p.person_id, p.first_seen, p.last_seen) for p in profiles] == [
            ("u1", NOW, later)  # u2 was never identified: no profile
        ]


def test_last_seen_is_bumped_through_the_profile_index(tmp_path: Path) -> None:
    """The batch's persons are looked up in the profiles, not the profiles in the batch: the
    other plan reads the whole batch once per profile of the workspace."""
    from wayline.storage.mover import _SEEN_SQL

    with Database(f"sqlite:///{tmp_path / 'w.sqlite3'}") as db, db.read() as conn:
        plan = conn.execute(
            text(f"EXPLAIN QUERY PLAN {_SEEN_SQL['sqlite']}"), {"ws": "default", "seen": "{}"}
        ).all()
    steps = [row[3] for row in plan]
    assert any(
        "customer_profiles USING" in s and "(workspace_id=? AND person_id=?)" in s for s in steps
    ), steps


def test_clearing_moved_payloads_does_not_write_them_again(tmp_path: Path) -> None:
    """SQLite as built for Python zeroes every page it frees (SECURE_DELETE): clearing a
    batch's payloads would write their size again into the WAL, under the write lock."""
    from wayline.storage.mover import _freed_unzeroed

    path = tmp_path / "w.sqlite3"
    with Database(f"sqlite:///{path}") as db, EventStore(tmp_path / "e.duckdb") as events:
        db.ensure_default_workspace()
        filler = {"blob": "x" * 300}
        for r in range(20):
            db.accept("default", [_track(r * 100 + i, properties=filler) for i in range(100)], NOW)
        with db.read() as conn:
            before = conn.exec_driver_sql("PRAGMA secure_delete").scalar_one()
            payloads = conn.exec_driver_sql("SELECT sum(length(payload)) FROM inbox_requests")
            size = payloads.scalar_one()
        with closing(sqlite3.connect(path)) as raw:  # the WAL emptied: what the move writes
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert Mover(db, events, batch_size=10_000).move_batch() == 2000
        wal = path.with_name(path.name + "-wal").stat().st_size
        assert wal < size / 3, (wal, size)  # the claimed ids; with the pages zeroed: > size
        with db.write() as conn:
            with _freed_unzeroed(conn):
                assert conn.exec_driver_sql("PRAGMA secure_delete").scalar_one() == 2  # FAST
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar_one() == before
            assert conn.scalars(select(InboxRequest.payload)).all() == [None] * 20


def test_write_transactions_run_in_the_foreground_given(
    db: Database, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write transaction on the operational store (the ids taken, the marking) runs
    through ``foreground``; ``wayline serve`` runs them at normal priority there."""
    inside: list[bool] = [False]
    ran: list[str] = []

    def foreground(work: Callable[[], Any]) -> Any:
        inside[0] = True
        try:
            return work()
        finally:
            inside[0] = False

    real_write = db.write

    def write() -> Any:
        ran.append("foreground" if inside[0] else "mover's own thread")
        return real_write()

    db.accept("default", [_track(i) for i in range(5)], NOW)
    db.accept("default", [_track(i) for i in range(3, 8)], NOW)  # a retry: owners looked up
    monkeypatch.setattr(db, "write", write)
    assert Mover(db, store, foreground=foreground).drain() == 10
    assert store.count() == 8
    assert ran and set(ran) == {"foreground"}, ran


def test_moved_rows_are_the_normalised_messages(
    db: Database, store: EventStore, tmp_path: Path
) -> None:
    """The mover's columns hold what normalize() makes of each message, JSON columns too."""
    from wayline.events.normalize import normalize

    context = {
        "page": {"path": "/p", "referrer": "https://t.co/x"},
        "userAgent": "iPad",
        "ip": "::1",
    }
    messages = [
        {
            "type": "page",
            "name": "Home",
            "anonymousId": "a1",
            "messageId": "m1",
            "context": context,
        },
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "messageId": "m2",
            "traits": {"email": "é@example.com", "n": [1, 2.5, None, True]},
            "timestamp": "2026-10-31T10:00:00.123456+02:00",
        },
        _track(3, properties={"revenue": "12.345", "currency": "EUR", "nested": {"a": {}}}),
        {"type": "alias", "userId": "u2", "previousId": "u1", "messageId": "m4"},
    ]
    db.accept("default", messages, NOW)
    Mover(db, store).drain()
    with EventStore(tmp_path / "expected.duckdb") as expected:
        expected.append_rows(
            normalize(m, workspace_id="default", received_at=NOW) for m in messages
        )
        query = "SELECT * EXCLUDE (person_id) FROM events ORDER BY message_id"
        assert store.con.execute(query).fetchall() == expected.con.execute(query).fetchall()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "served.duckdb"
    EventStore(path).close()
    return path


def _opens(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    from wayline.storage import mover as mover_module

    opened: list[Path] = []
    real = mover_module.open_when_free

    def counting(path: Path, **kwargs: Any) -> EventStore:
        opened.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(mover_module, "open_when_free", counting)
    return opened


def _readable(path: Path) -> bool:
    """Whether a reader can open the file (this process holds no writer on it)."""
    with EventStore(path, read_only=True) as reader:
        return reader.count() >= 0


@pytest.mark.parametrize("hold_seconds, opens", [(60.0, 1), (0.0, 4)])
def test_a_backlog_keeps_the_file_open_between_full_batches_for_a_while(
    db: Database,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hold_seconds: float,
    opens: int,
) -> None:
    for i in range(0, 35, 10):  # three full batches of 10, then one of 5
        db.accept("default", [_track(j) for j in range(i, min(i + 10, 35))], NOW)
    opened = _opens(monkeypatch)
    mover = Mover(db, store_path, batch_size=10, hold_seconds=hold_seconds)
    assert mover.drain() == 35
    assert len(opened) == opens
    assert _readable(store_path)  # closed once drained
    with EventStore(store_path, read_only=True) as reader:
        assert reader.count() == 35


def test_a_batch_that_is_not_full_closes_the_file(
    db: Database, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.accept("default", [_track(i) for i in range(10)], NOW)
    db.accept("default", [_track(i) for i in range(10, 15)], NOW)
    opened = _opens(monkeypatch)
    mover = Mover(db, store_path, batch_size=10, hold_seconds=60.0)
    assert mover._move_batch(10, now=None, hold=True) == 10  # full: held
    with pytest.raises(duckdb.Error):
        _readable(store_path)
    assert mover._move_batch(10, now=None, hold=True) == 5  # not full: closed after
    assert _readable(store_path) and len(opened) == 1
    db.accept("default", [_track(i) for i in range(15, 25)], NOW)
    assert mover._move_batch(10, now=None, hold=True) == 10  # full: held again
    assert mover._move_batch(10, now=None, hold=True) == 0  # nothing pending: closed
    assert _readable(store_path) and len(opened) == 2
    db.accept("default", [_track(i) for i in range(25, 35)], NOW)
    assert mover.move_batch() == 10  # the public call never holds
    assert _readable(store_path) and len(opened) == 3


def test_a_failed_batch_lets_go_of_a_held_file(
    db: Database, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(0, 30, 10):
        db.accept("default", [_track(j) for j in range(i, i + 10)], NOW)
    mover = Mover(db, store_path, batch_size=10, hold_seconds=60.0)
    assert mover._move_batch(10, now=None, hold=True) == 10
    with monkeypatch.context() as patch:
        patch.setattr(Mover, "_take_ids", lambda *a, **k: (_ for _ in ()).throw(Crash))
        with pytest.raises(Crash):
            mover.drain()
    assert _readable(store_path)
    assert mover.drain() == 20
    with EventStore(store_path, read_only=True) as reader:
        assert reader.count() == 30
