"""The operational store on SQLite and on PostgreSQL: migrations, workspaces, keys, the inbox."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, inspect, text

from wayline.errors import InputError, NotFound
from wayline.storage.db import DEFAULT_WORKSPACE_ID, Database
from wayline.storage.models import CustomerProfile

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wayline.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, clock=lambda: NOW)
    yield database
    database.close()


def _msg(i: int, **extra: object) -> dict[str, object]:
    return {"type": "track", "event": "Viewed", "userId": f"u{i}", "messageId": f"m{i}", **extra}


def test_migrates_an_empty_database_to_head(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "workspaces",
        "write_keys",
        "inbox_requests",
        "inbox_message_ids",
        "customer_profiles",
        "alembic_version",
    } <= tables
    with db.read() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "0007"
    db.migrate()  # idempotent
    with db.read() as conn:
        assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1


def test_sqlite_is_wal_and_fully_synchronous(tmp_path: Path) -> None:
    with Database(f"sqlite:///{tmp_path / 'w.sqlite3'}") as db, db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_statistics_let_sqlite_scan_a_workspace_s_profiles(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.sqlite'}")
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    with db.write() as conn:
        conn.execute(
            insert(CustomerProfile),
            [
                {"workspace_id": "w", "person_id": f"p{i}", "email": f"p{i}@x.example",
                 "consent": {}, "traits": {}, "first_seen": seen, "last_seen": seen}
                for i in range(2000)
            ],
        )  # fmt: skip
    search = (
        "SELECT person_id FROM customer_profiles WHERE workspace_id = 'w' "
        "AND coalesce(email, '') LIKE '%p1%'"
    )
    db.refresh_statistics()
    with db.read() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + search))
        assert conn.scalar(text("SELECT count(*) FROM sqlite_stat1")) > 0
    # One workspace holds every row: reading them in order beats a lookup per index entry.
    assert plan.startswith("SCAN customer_profiles"), plan
    db.close()


def test_default_workspace_is_created_once(db: Database) -> None:
    ws, key, created = db.ensure_default_workspace()
    assert (ws, created) == (DEFAULT_WORKSPACE_ID, True)
    assert db.ensure_default_workspace() == (ws, key, False)
    assert db.workspace_for_key(key) == "default"


def test_workspaces_and_keys(db: Database) -> None:
    db.ensure_default_workspace()
    ws, key = db.create_workspace("Shop B")
    assert ws != DEFAULT_WORKSPACE_ID
    listed = {w.id: w for w in db.list_workspaces()}
    assert set(listed) == {DEFAULT_WORKSPACE_ID, ws}
    assert listed[ws].name == "Shop B" and listed[ws].write_keys == (key,)
    assert listed[ws].created_at == NOW
    assert db.workspace_for_key(key) == ws
    assert db.workspace_for_key("wk_unknown") is None
    with pytest.raises(InputError):
        db.create_workspace("  ")
    with pytest.raises(NotFound):
        db.create_write_key("nope")


def test_revoked_key_stops_working(db_url: str) -> None:
    with Database(db_url, key_cache_seconds=0) as db:
        ws, key = db.create_workspace("Shop")
        second = db.create_write_key(ws)
        assert db.workspace_for_key(key) == ws
        db.revoke_write_key(key)
        assert db.workspace_for_key(key) is None
        assert db.workspace_for_key(second) == ws
        with pytest.raises(NotFound):
            db.revoke_write_key(key)


def test_accept_stores_a_request_as_one_row(db: Database) -> None:
    ws, _, _ = db.ensure_default_workspace()
    batch = [_msg(i) for i in range(50)]
    assert db.accept(ws, batch, NOW) == 50
    # A retry is stored again (the mover keeps one copy); a repeat inside a request is not.
    assert db.accept(ws, [*batch[:10], _msg(50), _msg(50)], NOW + timedelta(seconds=5)) == 11
    other, _ = db.create_workspace("Other")
    assert db.accept(other, batch[:3], NOW) == 3
    assert db.inbox_count(ws) == 61
    assert db.inbox_count(pending=True) == 64
    with db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT message_count, payload, received_at FROM inbox_requests "
                "WHERE workspace_id = :w ORDER BY id"
            ),
            {"w": ws},
        ).all()
    assert [r[0] for r in rows] == [50, 11]
    assert orjson.loads(rows[0][1]) == batch
    assert [m["messageId"] for m in orjson.loads(rows[1][1])] == [f"m{i}" for i in [*range(10), 50]]
    assert rows[1][2] is not None


def test_failed_accept_stores_nothing(db: Database) -> None:
    ws, _, _ = db.ensure_default_workspace()
    with pytest.raises(KeyError):
        db.accept(ws, [_msg(1), {"type": "track"}], NOW)  # the second has no messageId
    assert db.inbox_count() == 0


def _start(
    url: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    barrier.wait()
    with Database(url) as db:
        out.put(db.ensure_default_workspace())


@pytest.mark.slow  # spawned processes import SQLAlchemy and Alembic: seconds each
def test_processes_starting_at_once_migrate_once(db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [ctx.Process(target=_start, args=(db_url, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in range(n)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sum(created for _, _, created in results) == 1
    assert len({key for _, key, _ in results}) == 1
    with Database(db_url) as db:
        assert [w.id for w in db.list_workspaces()] == [DEFAULT_WORKSPACE_ID]


def test_concurrent_accepts_share_commits_and_count_exactly(db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ws, _, _ = db.ensure_default_workspace()

    def send(t: int) -> int:
        # Threads overlap by half: each id is sent by two threads (the mover keeps one copy).
        return sum(
            db.accept(ws, [_msg(1000 * ((t + k) % 8) + j) for j in range(25)], NOW)
            for k in range(2)
        )

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(send, range(8)))
    assert sum(counts) == 16 * 25 == db.inbox_count(ws)
    with db.read() as conn:
        requests = conn.execute(text("SELECT count(*) FROM inbox_requests")).scalar_one()
    assert requests == 16


def test_sqlite_write_transactions_take_the_lock_up_front(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "lock.sqlite3"
    with Database(f"sqlite:///{path}") as db:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        with db.write(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        with db.read():
            other.execute("BEGIN IMMEDIATE")  # a read transaction leaves writers free
            other.execute("ROLLBACK")
        other.close()


def test_one_failing_request_does_not_fail_the_others_in_its_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    real = Database._insert_inbox

    def insert(self: Database, conn: Any, ws: str, ids: Any, payload: bytes, at: datetime) -> int:
        if ws == "broken":
            raise RuntimeError("disk on fire")
        return real(self, conn, ws, ids, payload, at)

    monkeypatch.setattr(Database, "_insert_inbox", insert)
    with Database(f"sqlite:///{tmp_path / 'g.sqlite3'}") as db:

        def send(i: int) -> int | str:
            try:
                return db.accept("broken" if i % 4 == 0 else "default", [_msg(i)], NOW)
            except RuntimeError:
                return "failed"

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, range(40)))
        assert results.count("failed") == 10
        assert results.count(1) == 30 == db.inbox_count()
