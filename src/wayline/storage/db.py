"""The operational store: one facade over SQLite (default) or PostgreSQL.

:class:`Database` opens the store, migrates it to the newest schema, and offers the few
operations the tracking API and the command line need: workspaces and their write keys, and
:meth:`Database.accept`, which stores a request's acknowledged events in one transaction.

The inbox. A request is stored as one row of ``inbox_requests`` (its messages as one JSON
array): a batch of 100 events is one insert, not 100 inserts into a unique index, and the
write lock every API worker queues for is held that much shorter. A re-sent event (a client's
retry) is not looked for here: it is stored again, and the mover keeps one copy of each
``messageId`` (see :mod:`wayline.storage.mover`). Inside one request a repeated ``messageId``
is dropped at once (the first copy is kept).

Durability. An event is acknowledged (HTTP 200) only after the transaction holding it has
committed, so nothing acknowledged is lost:

- PostgreSQL: a commit is durable (``synchronous_commit`` on, the server default).
- SQLite runs in WAL mode with ``synchronous=FULL``. With ``synchronous=NORMAL`` a WAL commit
  survives a crash of the *process* (the WAL is in the OS page cache) but not a power loss or
  kernel panic: the last transactions can roll back because the WAL was not fsynced at commit.
  "Acknowledged is durable" must hold across power loss too, so every commit fsyncs the WAL.
  The cost is one fsync per commit; requests arriving together share one commit (group commit,
  see :class:`_GroupCommitter`), so the fsync is amortised over requests as well as events.
- ``busy_timeout`` lets several server processes share the SQLite file: a writer waits for the
  lock instead of failing. Write transactions start with ``BEGIN IMMEDIATE``, which takes the
  write lock up front, so a transaction that read first can never fail to upgrade its lock.
- Wayline's own writers also queue on an advisory file lock (``flock`` on ``<file>-writelock``)
  before ``BEGIN IMMEDIATE``. SQLite's busy handler *polls* (it sleeps 1, 2, 5 … 100 ms between
  tries), so two server processes taking turns at the write lock lost most of their time asleep
  and the slow poller could starve (measured: 2 workers slower than 1, p99 over 200 ms). A
  blocked ``flock`` wakes as soon as the holder commits. Other SQLite clients still work: they
  fall back on ``busy_timeout``.

Journeys. An event accepted for a workspace that has a live journey is also queued, in the same
transaction, in ``journey_inputs`` for the journey runtime (:mod:`wayline.journeys.runtime`):
the runtime sees every acknowledged event exactly once. For those workspaces the request's ids
are taken in ``inbox_message_ids`` at once (a retry is recognised on arrival and not queued
again); workspaces without live journeys pay nothing but a cached set lookup. Which workspaces
have live journeys is re-read at most every ``journey_cache_seconds``.

Two processes starting at once both call :meth:`Database.migrate`; the migration runs inside a
transaction holding a lock (SQLite's write lock, PostgreSQL's advisory lock), so the second one
waits, then finds the schema already at head and does nothing.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable

from wayline.config import Settings
from wayline.errors import InputError, NotFound
from wayline.storage.journey_models import InputRow, JourneyRow
from wayline.storage.models import InboxMessageId, InboxRequest, Workspace, WriteKey

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE_ID = "default"
"""The id of the workspace created on first start; other parts of Wayline rely on it."""

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x57A7_11E0_0001
_SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    id: str
    name: str
    created_at: datetime
    write_keys: tuple[str, ...]
    """The workspace's keys that are not revoked, oldest first."""


def new_write_key() -> str:
    """A fresh write key: 32 random bytes, URL-safe (it travels in HTTP basic auth)."""
    return "wk_" + secrets.token_urlsafe(32)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Database:
    """The operational store. Thread-safe; open one per process.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).
        migrate: bring the schema to head on open (idempotent).
        clock: where creation times come from (injected in tests).
        key_cache_seconds: how long a write key → workspace lookup is remembered in-process;
            a revoked key stops working at most this long after revocation.
        journey_cache_seconds: how long the set of workspaces with a live journey is
            remembered; events of a workspace whose first journey went live less than this
            long ago may not reach the journey runtime.
    """

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] = _utcnow,
        key_cache_seconds: float = 30.0,
        journey_cache_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.clock = clock
        self.engine = _make_engine(url)
        self.dialect = self.engine.dialect.name
        self._key_cache: dict[str, tuple[str, float]] = {}
        self._key_cache_seconds = key_cache_seconds
        self._key_lock = threading.Lock()
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        # Built once: the hot path only binds parameters to these compiled-and-cached statements.
        self._inbox_stmt: Executable = insert(InboxRequest)
        self._claim_stmt: Executable = (
            dialect_insert(InboxMessageId)
            .on_conflict_do_nothing(index_elements=["workspace_id", "message_id"])
            .returning(InboxMessageId.workspace_id, InboxMessageId.message_id)
        )
        self._journey_cache_seconds = journey_cache_seconds
        self._journey_workspaces: tuple[frozenset[str], float] = (frozenset(), -1.0)
        # SQLite: concurrent accepts share one transaction and one fsync (see _GroupCommitter).
        self._committer = _GroupCommitter(self) if self.dialect == "sqlite" else None
        self._write_lock = (
            _WriteLock(self.engine.url.database) if self.dialect == "sqlite" else None
        )
        if self.dialect == "sqlite":
            # The inbox insert of the hot path, run on the driver's connection rather than
            # through Core (whose per-statement work is several times SQLite's for one row).
            # received_at is bound through the column's own type, so the stored text is exactly
            # what Core would write.
            self._sqlite_inbox_sql = (
                "INSERT INTO inbox_requests (workspace_id, received_at, message_count, payload) "
                "VALUES (?, ?, ?, ?)"
            )
            bind = InboxRequest.__table__.c.received_at.type.bind_processor(self.engine.dialect)
            self._sqlite_time: Callable[[datetime], Any] = bind or (lambda value: value)
        if migrate:
            self.migrate()

    @classmethod
    def open(cls, settings: Settings | None = None, **kwargs: Any) -> Database:
        """The store named by the settings (SQLite in the data folder unless a URL is set)."""
        settings = settings or Settings()
        if not settings.database_url:
            settings.ensure_home()
        return cls(settings.resolved_database_url, **kwargs)

    def close(self) -> None:
        if self._committer is not None:
            self._committer.stop()
        self.engine.dispose()
        if self._write_lock is not None:
            self._write_lock.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        with _locked(self._write_lock), self.engine.connect() as conn:
            conn.execution_options(wayline_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe when several processes start at once."""
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.write() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def refresh_statistics(self) -> None:
        """Let SQLite's query planner know the customer profiles' shape (``ANALYZE``: 36 ms for
        140,000 profiles).

        Without statistics SQLite takes any index on an equality: the customer search then
        walks all of a workspace's profiles through the (workspace, last seen) index, a row
        lookup each — 230 ms for 140,000 profiles, where the scan it picks once it knows that
        one workspace holds them all takes 95 ms (measured; a sampled ANALYZE does not tell it).
        Only this table: the journey tables' plans were measured without statistics.
        PostgreSQL's autovacuum keeps its own.
        """
        if self.dialect != "sqlite":
            return
        with self.write() as conn:
            conn.exec_driver_sql("ANALYZE customer_profiles")

    def upsert(self, table: Any, values: Mapping[str, Any], keys: Sequence[str]) -> None:
        """Insert ``values`` into ``table``, or update the row with the same ``keys``."""
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = dialect_insert(table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={k: v for k, v in values.items() if k not in keys}
        )
        with self.write() as conn:
            conn.execute(stmt)

    # -- workspaces and keys ----------------------------------------------------------------

    def ensure_default_workspace(self) -> tuple[str, str, bool]:
        """Create the default workspace and its first write key if missing.

        Returns ``(workspace_id, write_key, created)``; ``created`` is true only for the call
        that created it (one of several processes starting at once).
        """
        now = self.clock()
        with self.write() as conn:
            ins = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
            result = conn.execute(
                ins(Workspace)
                .values(id=DEFAULT_WORKSPACE_ID, name="Default", created_at=now)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(Workspace.id)
            )
            # RETURNING rather than rowcount: psycopg through SQLAlchemy may report -1.
            created = result.first() is not None
            if created:
                key = new_write_key()
                conn.execute(
                    insert(WriteKey).values(
                        key=key, workspace_id=DEFAULT_WORKSPACE_ID, created_at=now
                    )
                )
                return DEFAULT_WORKSPACE_ID, key, True
        keys = self._keys_of(DEFAULT_WORKSPACE_ID)
        if not keys:  # every key revoked: issue a new one rather than leave it unreachable
            return DEFAULT_WORKSPACE_ID, self.create_write_key(DEFAULT_WORKSPACE_ID), False
        return DEFAULT_WORKSPACE_ID, keys[0], False

    def create_workspace(self, name: str) -> tuple[str, str]:
        """A new workspace named ``name``, with one write key. Returns ``(id, write_key)``."""
        name = name.strip()
        if not name:
            raise InputError("a workspace needs a name", field="name")
        workspace_id = "ws_" + secrets.token_hex(6)
        key = new_write_key()
        now = self.clock()
        with self.write() as conn:
            conn.execute(insert(Workspace).values(id=workspace_id, name=name, created_at=now))
            conn.execute(
                insert(WriteKey).values(key=key, workspace_id=workspace_id, created_at=now)
            )
        return workspace_id, key

    def create_write_key(self, workspace_id: str) -> str:
        """Another write key for an existing workspace."""
        key = new_write_key()
        with self.write() as conn:
            if conn.scalar(select(Workspace.id).where(Workspace.id == workspace_id)) is None:
                raise NotFound(f"no workspace {workspace_id!r}")
            conn.execute(
                insert(WriteKey).values(key=key, workspace_id=workspace_id, created_at=self.clock())
            )
        return key

    def revoke_write_key(self, key: str) -> None:
        """Stop accepting ``key`` (within ``key_cache_seconds`` in other processes)."""
        with self.write() as conn:
            result = conn.execute(
                update(WriteKey)
                .where(WriteKey.key == key, WriteKey.revoked_at.is_(None))
                .values(revoked_at=self.clock())
                .returning(WriteKey.key)
            )
            if result.first() is None:
                raise NotFound("no such active write key")
        with self._key_lock:
            self._key_cache.pop(key, None)

    def list_workspaces(self) -> list[WorkspaceInfo]:
        with self.read() as conn:
            workspaces = conn.execute(
                select(Workspace.id, Workspace.name, Workspace.created_at).order_by(
                    Workspace.created_at, Workspace.id
                )
            ).all()
            keys = conn.execute(
                select(WriteKey.workspace_id, WriteKey.key)
                .where(WriteKey.revoked_at.is_(None))
                .order_by(WriteKey.created_at, WriteKey.key)
            ).all()
        by_ws: dict[str, list[str]] = {}
        for ws_id, key in keys:
            by_ws.setdefault(ws_id, []).append(key)
        return [
            WorkspaceInfo(ws_id, name, created, tuple(by_ws.get(ws_id, ())))
            for ws_id, name, created in workspaces
        ]

    def _keys_of(self, workspace_id: str) -> list[str]:
        with self.read() as conn:
            return list(
                conn.scalars(
                    select(WriteKey.key)
                    .where(WriteKey.workspace_id == workspace_id, WriteKey.revoked_at.is_(None))
                    .order_by(WriteKey.created_at, WriteKey.key)
                )
            )

    def cached_workspace_for_key(self, key: str) -> str | None:
        """:meth:`workspace_for_key` from the in-process cache only (no I/O); ``None`` when
        the key is not cached (unknown, or to be looked up)."""
        hit = self._key_cache.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return None

    def workspace_for_key(self, key: str) -> str | None:
        """The workspace a write key belongs to; ``None`` when unknown or revoked.

        Known keys are remembered for ``key_cache_seconds`` (the tracking API asks on every
        request); unknown keys are not, so a key created in another process works at once.
        """
        now = time.monotonic()
        hit = self._key_cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.read() as conn:
            workspace_id = conn.scalar(
                select(WriteKey.workspace_id).where(
                    WriteKey.key == key, WriteKey.revoked_at.is_(None)
                )
            )
        with self._key_lock:
            if workspace_id is None:
                self._key_cache.pop(key, None)
            else:
                self._key_cache[key] = (workspace_id, now + self._key_cache_seconds)
        return workspace_id

    # -- the inbox --------------------------------------------------------------------------

    def accept(
        self, workspace_id: str, messages: Sequence[Mapping[str, Any]], received_at: datetime
    ) -> int:
        """Store acknowledged messages in the inbox, in one transaction.

        Each message must carry a ``messageId``. Returns how many messages were stored (see
        :meth:`accept_encoded`).
        """
        ids, firsts = first_copies([str(m["messageId"]) for m in messages], messages)
        return self.accept_encoded(workspace_id, ids, orjson.dumps(firsts), received_at)

    def accept_encoded(
        self, workspace_id: str, message_ids: Sequence[str], payload: bytes, received_at: datetime
    ) -> int:
        """:meth:`accept` for a request already encoded: its distinct message ids, and its
        messages (in the same order) as one JSON array.

        Returns how many messages were stored: all of them, except, for a workspace with a live
        journey, those already stored by an earlier request (a retry, recognised on arrival).
        Elsewhere a retry is stored again and dropped by the mover.
        """
        if not message_ids:
            return 0
        if self._committer is not None:
            return self._committer.submit(workspace_id, message_ids, payload, received_at)
        with self.write() as conn:
            return self._insert_inbox(conn, workspace_id, message_ids, payload, received_at)

    async def accept_encoded_async(
        self, workspace_id: str, message_ids: Sequence[str], payload: bytes, received_at: datetime
    ) -> int:
        """:meth:`accept_encoded` for an event loop: the commit is awaited, no thread blocks.

        On SQLite the request joins the group commit and the loop is woken when that commits;
        on PostgreSQL the transaction runs in a worker thread.
        """
        if not message_ids:
            return 0
        if self._committer is not None:
            return await asyncio.wrap_future(
                self._committer.enqueue(workspace_id, message_ids, payload, received_at)
            )
        return await asyncio.to_thread(
            self.accept_encoded, workspace_id, message_ids, payload, received_at
        )

    def _insert_inbox(
        self,
        conn: Connection,
        workspace_id: str,
        message_ids: Sequence[str],
        payload: bytes,
        received_at: datetime,
    ) -> int:
        if workspace_id in self.journey_workspaces():
            return self._insert_for_journeys(conn, workspace_id, message_ids, payload, received_at)
        if self.dialect == "sqlite":
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(
                    self._sqlite_inbox_sql,
                    (workspace_id, self._sqlite_time(received_at), len(message_ids), payload),
                )
            finally:
                cursor.close()
        else:
            conn.execute(
                self._inbox_stmt, _inbox_row(workspace_id, message_ids, payload, received_at)
            )
        return len(message_ids)

    def _insert_for_journeys(
        self,
        conn: Connection,
        workspace_id: str,
        message_ids: Sequence[str],
        payload: bytes,
        received_at: datetime,
    ) -> int:
        """The inbox insert for a workspace with a live journey: the request's ids are taken at
        once, and the messages seen for the first time are queued for the runtime."""
        inbox_id = conn.execute(
            insert(InboxRequest)
            .values(**_inbox_row(workspace_id, message_ids, payload, received_at))
            .returning(InboxRequest.id)
        ).scalar_one()
        new = {
            message_id
            for _, message_id in self.claim_message_ids(
                conn, [(workspace_id, m, inbox_id) for m in message_ids]
            )
        }
        queued = [
            {
                "workspace_id": workspace_id,
                "person_id": _person_of(message),
                "received_at": received_at,
                "payload": orjson.dumps(message).decode(),
            }
            for message_id, message in zip(message_ids, orjson.loads(payload), strict=True)
            if message_id in new
        ]
        if queued:
            conn.execute(insert(InputRow), queued)
        return len(new)

    def claim_message_ids(
        self, conn: Connection, claims: Sequence[tuple[str, str, int]]
    ) -> list[tuple[str, str]]:
        """Take ``(workspace_id, message_id)`` for the copy in inbox request ``inbox_id``;
        returns the ``(workspace_id, message_id)`` taken now (the others were taken before)."""
        if not claims:
            return []
        rows = [{"workspace_id": w, "message_id": m, "inbox_id": i} for w, m, i in claims]
        return [(w, m) for w, m in conn.execute(self._claim_stmt, rows)]

    def journey_workspaces(self) -> frozenset[str]:
        """The workspaces that have a live journey (cached ``journey_cache_seconds``)."""
        cached, expires = self._journey_workspaces
        now = time.monotonic()
        if expires > now:
            return cached
        with self.engine.connect() as conn:
            found = frozenset(
                conn.scalars(
                    select(JourneyRow.workspace_id).where(JourneyRow.status == "live").distinct()
                )
            )
            conn.rollback()
        self._journey_workspaces = (found, now + self._journey_cache_seconds)
        return found

    def forget_journey_workspaces(self) -> None:
        """Re-read the live-journey workspaces on next use (after a publish in this process)."""
        self._journey_workspaces = (frozenset(), -1.0)

    def inbox_count(self, workspace_id: str | None = None, *, pending: bool = False) -> int:
        """How many messages the inbox received (``pending``: not yet moved). A retried
        message counts each time it was received until the mover drops its copies."""
        query = select(func.coalesce(func.sum(InboxRequest.message_count), 0))
        if workspace_id is not None:
            query = query.where(InboxRequest.workspace_id == workspace_id)
        if pending:
            query = query.where(InboxRequest.moved_at.is_(None))
        with self.read() as conn:
            return int(conn.scalar(query) or 0)


def first_copies(
    message_ids: Sequence[str], messages: Sequence[Any]
) -> tuple[Sequence[str], Sequence[Any]]:
    """The ids and messages of a request with each id once (its first copy): a message sent
    twice in one request is a client's retry too."""
    if len(set(message_ids)) == len(message_ids):
        return message_ids, messages
    seen: set[str] = set()
    ids, firsts = [], []
    for message_id, message in zip(message_ids, messages, strict=True):
        if message_id not in seen:
            seen.add(message_id)
            ids.append(message_id)
            firsts.append(message)
    return ids, firsts


def _inbox_row(
    workspace_id: str, message_ids: Sequence[str], payload: bytes, received_at: datetime
) -> dict[str, Any]:
    """The ``inbox_requests`` row of one acknowledged request."""
    return {
        "workspace_id": workspace_id,
        "received_at": received_at,
        "message_count": len(message_ids),
        "payload": payload,
    }


def _person_of(message: Mapping[str, Any]) -> str:
    """The person a tracked message is about, as the mover will see it (userId, else
    anonymousId); accepted messages have one of them (the API validated it)."""
    return str(message.get("userId") or message.get("anonymousId") or "")


_Request = tuple[str, Sequence[str], bytes, datetime, "Future[int]"]


class _GroupCommitter:
    """Group commit for SQLite: requests that arrive while a commit is in flight share the next.

    Every acknowledged batch needs an fsync (``synchronous=FULL``), and an fsync costs
    milliseconds; SQLite also takes one writer at a time across all processes. Committing each
    request alone would cap a server at one request per fsync. Instead one thread per process
    writes: it takes every request queued so far, inserts each in one transaction, commits
    (one fsync), and only then answers them all. Under load the groups grow by themselves (more
    requests queue up during each fsync); with one request at a time nothing waits. Each request
    still sees its own count, and none is answered before its commit. Should a group fail, its
    requests are retried one by one, so one request cannot fail another.
    """

    MAX_MESSAGES = 20_000
    """Messages per group at most: keeps transactions, and the lock held, short."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(
        self, workspace_id: str, message_ids: Sequence[str], payload: bytes, at: datetime
    ) -> int:
        """Queue a request for the next group and wait until it is committed."""
        return self.enqueue(workspace_id, message_ids, payload, at).result()

    def enqueue(
        self, workspace_id: str, message_ids: Sequence[str], payload: bytes, at: datetime
    ) -> Future[int]:
        """Queue a request for the next group; the future is resolved once it is committed."""
        future: Future[int] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="wayline-group-commit", daemon=True
                )
                self._thread.start()
        self._queue.put((workspace_id, message_ids, payload, at, future))
        return future

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            group = [first]
            messages = len(first[1])
            stop = False
            while messages < self.MAX_MESSAGES:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
                messages += len(more[1])
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Request]) -> None:
        try:
            with self._db.write() as conn:
                counts = [
                    self._db._insert_inbox(conn, ws, ids, payload, at)
                    for ws, ids, payload, at, _ in group
                ]
        except Exception as exc:
            if len(group) == 1:
                group[0][4].set_exception(exc)
                return
            for request in group:
                self._commit([request])
            return
        for (*_, future), count in zip(group, counts, strict=True):
            future.set_result(count)


class _WriteLock:
    """One writer at a time across Wayline's processes and threads, for a SQLite file.

    A thread lock orders the threads of this process (``flock`` locks belong to the open file,
    which they share), then ``flock`` orders the processes. A waiter blocks in the kernel and
    wakes when the holder releases, unlike SQLite's busy handler, which sleeps and polls.
    The lock file is never removed: removing it would let two processes lock two files.
    """

    def __init__(self, database: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        if database and database != ":memory:" and not database.startswith("file:"):
            self._fd = os.open(f"{database}-writelock", os.O_RDWR | os.O_CREAT, 0o644)

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def _locked(lock: _WriteLock | None) -> Iterator[None]:
    if lock is None:
        yield
        return
    with lock:
        yield


def _make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        # pool_pre_ping: a server restart must not fail the first request after it.
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below): pysqlite's implicit transactions do not cover DDL and
        # cannot ask for BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # see the module docstring: power-loss durable
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("wayline_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
