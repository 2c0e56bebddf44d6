"""The mover: carries acknowledged events from the operational store's inbox into DuckDB.

The tracking API commits requests to the inbox (many writers, durable on commit; one row per
request, its messages as one JSON array); analytics read them from DuckDB's ``events`` table.
The mover runs in exactly one process (DuckDB allows one writer process per file) and, batch
after batch:

1. reads inbox requests not yet moved, oldest first, about ``batch_size`` messages;
2. normalises their messages (:func:`wayline.events.normalize.normalize_values`; they were
   validated when received) into row tuples;
3. takes each message's id in ``inbox_message_ids`` (one operational-store transaction, one
   statement), which decides which copy of a re-sent event is stored: the one whose request
   holds the id;
4. appends the events whose copy it holds to DuckDB, and records the batch's requests as
   appended (``mover_appended``), in one DuckDB transaction;
5. in one operational-store transaction, marks the requests moved (clearing the payload) and
   brings the customer profiles up to date from the batch's ``identify`` calls;
6. resolves identities (:func:`wayline.storage.identity.resolve_identities`) for the
   workspaces in the batch.

Once per ``messageId``. The tracking API stores a client's retry as it stores any request
(looking it up there would put an index probe per event under the write lock every API worker
waits for). Step 3 picks the copy: an id already taken keeps its request (an earlier move, or a
request of a workspace with a live journey, whose ids are taken on arrival); a new id goes to
the batch's oldest request holding it. Only that request's copy is stored. When the statement
takes every id offered (nothing was re-sent: the usual case), that is the whole answer;
otherwise the owner of each id is read back. A crash after step 3 finds the ids taken by the
batch's own requests the next time, which is the same decision.

Exactly once. The two stores cannot commit together, so a crash can fall between step 4 and
step 5: the rows are in DuckDB but the requests still pending in the inbox, and the next batch
reads them again. Step 4 therefore writes, in the same DuckDB transaction as the rows, which
requests they came from (``mover_appended``: inbox id, workspace, ``received_at``), and skips
the rows of a request found there. The record stays small: a batch deletes the entries of
requests up to its newest one, which are all marked moved by then or in the batch (a batch
takes the oldest pending requests, so a pending request older than its newest is in it);
entries of newer requests (a smaller batch after a crash) stay until a batch reaches them. The
workspace and ``received_at`` guard against a DuckDB file that outlived its operational store,
whose new requests reuse the ids. (The check was an anti-join of the batch against ``events``
on ``(workspace_id, message_id)``; it read the most recent row group on every batch, up to
120,000 rows, and cost a third as much as the append itself.)

A watermark (the highest inbox id moved) was the other alternative; it is wrong on PostgreSQL
with several API processes: ids are drawn from a sequence when a transaction *starts* writing
and become visible when it *commits*, so id 101 can be visible while id 100 is still
uncommitted; a watermark at 101 would skip 100 forever. Selecting by "not moved yet" has no such
gap (an entry of ``mover_appended`` names one request, not a range), and step 5 is idempotent.

Profiles are updated in the same transaction as the marking, so a batch's traits are applied
exactly once too. Identity resolution keeps its own watermark over DuckDB rows, so a crash
before step 6 is made good by the next call, which the mover also makes once when it starts.

Cost. The work per event is in Python (parsing, normalising, building Arrow columns) and in
DuckDB (the append); the work per batch (opening DuckDB, about 28 ms of CPU, and the checkpoint
when closing it; resolving identities; the commits) is why batches are 10,000 messages, and why,
while the mover is behind, the file stays open from one full batch to the next for up to
``hold_seconds`` before it is let go for readers. ``benchmarks/mover.py`` measures it against a
bare DuckDB append of the same rows.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
import pyarrow as pa
from sqlalchemy import Connection, bindparam, insert, select, text, update

from wayline.errors import InputError
from wayline.events.normalize import epoch_micros, normalize_values
from wayline.events.schema import EVENT_ARROW_SCHEMA, EVENT_COLUMNS, JSON_COLUMNS
from wayline.storage.analytics_access import open_when_free
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore
from wayline.storage.identity import resolve_identities
from wayline.storage.models import (
    CustomerProfile,
    InboxMessageId,
    InboxRequest,
    Workspace,
)

log = logging.getLogger(__name__)

# Ids looked up per query: well under SQLite's 32,766 bound parameters.
_IDS_PER_QUERY = 2000
# Ids taken per write transaction (~5 ms of the write lock on SQLite; see Mover._claim).
_CLAIMS_PER_TRANSACTION = 2500

_CONTACT_TRAITS = {
    "email": ("email",),
    "phone": ("phone",),
    "first_name": ("firstName", "first_name"),
    "last_name": ("lastName", "last_name"),
    "timezone": ("timezone",),
}


# Where _normalise's row tuples hold each column (EVENT_COLUMNS order).
_COLUMN = {name: index for index, name in enumerate(EVENT_COLUMNS)}
_WORKSPACE, _MESSAGE_ID = _COLUMN["workspace_id"], _COLUMN["message_id"]
_TYPE, _PERSON, _TIMESTAMP = _COLUMN["type"], _COLUMN["person_id"], _COLUMN["timestamp"]
_TRAITS, _CONTEXT = _COLUMN["traits"], _COLUMN["context"]

# Step 3 in one statement per workspace: the claims as one JSON object, message id → inbox id
# (an object, not an array of arrays: each element is read once, not parsed again per field).
_CLAIM_SQL = {
    "sqlite": text(
        "INSERT INTO inbox_message_ids (workspace_id, message_id, inbox_id) "
        "SELECT :ws, key, value FROM json_each(:claims) WHERE true "
        "ON CONFLICT (workspace_id, message_id) DO NOTHING"
    ),
    "postgresql": text(
        "INSERT INTO inbox_message_ids (workspace_id, message_id, inbox_id) "
        "SELECT :ws, key, value::bigint FROM jsonb_each_text(CAST(:claims AS jsonb)) "
        "ON CONFLICT (workspace_id, message_id) DO NOTHING"
    ),
}

# The last_seen of the profiles of a batch's other persons, in one statement per workspace:
# the persons as one JSON object, person id → last seen.
_SEEN_SQL = {
    # Materialised first: joined directly, SQLite scans the JSON once per profile of the
    # workspace (3 s for 5,000 persons against 5,000 profiles), not the other way round.
    "sqlite": text(
        "WITH v AS MATERIALIZED (SELECT key, value FROM json_each(:seen)) "
        "UPDATE customer_profiles SET last_seen = v.value FROM v "
        "WHERE customer_profiles.workspace_id = :ws AND customer_profiles.person_id = v.key "
        "  AND customer_profiles.last_seen < v.value"
    ),
    "postgresql": text(
        "UPDATE customer_profiles SET last_seen = v.value::timestamptz "
        "FROM jsonb_each_text(CAST(:seen AS jsonb)) AS v "
        "WHERE customer_profiles.workspace_id = :ws AND customer_profiles.person_id = v.key "
        "  AND customer_profiles.last_seen < v.value::timestamptz"
    ),
}

# The requests whose rows DuckDB holds, written with them (step 4); kept until a later batch
# shows they were marked moved. received_at (epoch microseconds) with the id: a file that
# outlived its operational store must not mistake a new store's request for an old one.
_APPENDED_DDL = """CREATE TABLE IF NOT EXISTS mover_appended (
    inbox_id BIGINT NOT NULL,
    workspace_id VARCHAR NOT NULL,
    received_us BIGINT NOT NULL
)"""
_V = TypeVar("_V")


class Foreground(Protocol):
    """Runs ``work`` (one operational-store write transaction) and returns what it returns,
    perhaps in another thread; see :class:`Mover`'s ``foreground``."""

    def __call__(self, work: Callable[[], _V], /) -> _V: ...


def _here(work: Callable[[], _V]) -> _V:
    """The default :class:`Foreground`: the calling thread."""
    return work()


def _by_workspace(values: Mapping[tuple[str, str], _V]) -> dict[str, dict[str, _V]]:
    """``(workspace_id, id) → value`` as ``workspace_id → {id: value}``."""
    grouped: dict[str, dict[str, _V]] = {}
    for (workspace_id, key), value in values.items():
        group = grouped.get(workspace_id)
        if group is None:
            group = grouped[workspace_id] = {}
        group[key] = value
    return grouped


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """No cyclic garbage collection meanwhile (the process's other threads included).

    A batch makes hundreds of thousands of objects that live until its end (the parsed
    messages, the rows), so the collector runs over and over, each pass through all of them,
    and finds nothing: none of them is in a cycle, reference counting frees them all. It took a
    fifth of the mover's time (measured with perf). Collection resumes after the batch.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def _freed_unzeroed(conn: Connection) -> Iterator[None]:
    """Meanwhile, SQLite pages this connection frees are not overwritten with zeros.

    The sqlite3 module's SQLite is built with ``SECURE_DELETE``: every page freed is zeroed and
    written, and a batch's cleared payloads are its whole size again in pages (~1,400 WAL
    frames and ~20 ms of the write lock per 100 requests of 100 events, against ~20 frames
    and ~3 ms without; measured). ``FAST`` still zeroes what sits on b-tree pages, not the
    freed overflow pages that held the payloads; their events are kept in DuckDB anyway, and
    the inbox's next requests reuse the pages. The connection's setting is put back after.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA secure_delete").scalar_one())
    conn.exec_driver_sql("PRAGMA secure_delete=FAST")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA secure_delete={before}")


@dataclass
class _Batch:
    """A batch's messages normalised: one tuple per row (``EVENT_COLUMNS`` order), the inbox
    request of each row, and the requests holding a message that did not normalise."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    inbox_ids: list[int] = field(default_factory=list)
    failed_ids: set[int] = field(default_factory=set)


def _normalise(pending: Iterable[Any]) -> _Batch:
    """Step 2: each request's messages, oldest request first."""
    batch = _Batch()
    for inbox_id, workspace_id, received_at, payload, _ in pending:
        try:
            messages = orjson.loads(payload or b"[]")
        except orjson.JSONDecodeError as exc:
            log.error("inbox request %s is not JSON, left aside: %s", inbox_id, exc)
            batch.failed_ids.add(inbox_id)
            continue
        try:
            rows = [
                normalize_values(m, workspace_id=workspace_id, received_at=received_at)
                for m in messages
            ]
        except InputError:
            rows = _normalise_each(inbox_id, workspace_id, received_at, messages)
            batch.failed_ids.add(inbox_id)
        batch.rows += rows
        batch.inbox_ids += [inbox_id] * len(rows)
    return batch


def _normalise_each(
    inbox_id: int, workspace_id: str, received_at: datetime, messages: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """A request's rows one message at a time, leaving aside those that do not normalise."""
    rows = []
    for index, message in enumerate(messages):
        try:
            rows.append(
                normalize_values(message, workspace_id=workspace_id, received_at=received_at)
            )
        except InputError as exc:
            # Validated on the way in, so only a change of the rules lands here. The request
            # is marked moved with its payload kept, to be found and replayed by hand (its
            # other messages are moved: a replay stores them once).
            log.error(
                "inbox request %s, message %s cannot be normalised, left aside: %s",
                inbox_id,
                index,
                exc,
            )
    return rows


def _arrow(rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Row tuples → an Arrow table of ``EVENT_ARROW_SCHEMA``, column by column."""
    dumps = orjson.dumps
    arrays = []
    for (name, _), column, arrow_field in zip(
        EVENT_COLUMNS.items(), zip(*rows, strict=True), EVENT_ARROW_SCHEMA, strict=True
    ):
        if name in JSON_COLUMNS:  # JSON text (Arrow takes the UTF-8 bytes as they are)
            # Most events have no traits: one shared "{}" instead of one dump each.
            column = tuple(dumps(value, default=str) if value else b"{}" for value in column)
        arrays.append(pa.array(column, type=arrow_field.type))
    return pa.Table.from_arrays(arrays, schema=EVENT_ARROW_SCHEMA)


@dataclass
class ProfileUpdate:
    """What a batch says about one person: contact fields, consent, traits, when seen."""

    first_seen: datetime
    last_seen: datetime
    identified: bool = False
    contact: dict[str, str] = field(default_factory=dict)
    consent: dict[str, bool] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)


def profile_updates(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], ProfileUpdate]:
    """Fold a batch of event rows into one update per (workspace, person). Pure.

    Every row counts for first/last seen; ``identify`` rows also carry traits, applied in
    timestamp order so the latest value of a trait wins. Contact fields come from the Segment
    reserved traits (``email``, ``phone``, ``firstName``/``lastName`` or ``name``, ``timezone``,
    else ``context.timezone``); consent from ``traits.consent``, an object of channel → boolean.
    """
    batch = rows if isinstance(rows, list) else list(rows)
    keys = [(r["workspace_id"], r["person_id"]) for r in batch]
    times = [r["timestamp"] for r in batch]
    identified = _identified(
        keys,
        times,
        [
            (r["timestamp"], i, r["traits"], r["context"])
            for i, r in enumerate(batch)
            if r["type"] == "identify"
        ],
    )
    first: dict[tuple[str, str], datetime] = {}
    for key, ts in zip(keys, times, strict=True):
        if key not in first or ts < first[key]:
            first[key] = ts
    last = _last_seen(keys, times)
    return {
        key: identified.get(key) or ProfileUpdate(first_seen=first[key], last_seen=last[key])
        for key in last
    }


def _last_seen(
    keys: Sequence[tuple[str, str]], times: Sequence[datetime]
) -> dict[tuple[str, str], datetime]:
    last: dict[tuple[str, str], datetime] = {}
    for key, ts in zip(keys, times, strict=True):
        if key not in last or ts > last[key]:
            last[key] = ts
    return last


def _identified(
    keys: Sequence[tuple[str, str]],
    times: Sequence[datetime],
    identifies: list[tuple[datetime, int, Any, Any]],
) -> dict[tuple[str, str], ProfileUpdate]:
    """The updates of the persons the batch identifies: ``identifies`` holds the timestamp,
    row index, traits and context of each ``identify`` row."""
    if not identifies:
        return {}
    updates: dict[tuple[str, str], ProfileUpdate] = {}
    persons = {keys[i] for _, i, _, _ in identifies}
    for key, ts in zip(keys, times, strict=True):
        if key in persons:
            upd = updates.get(key)
            if upd is None:
                updates[key] = ProfileUpdate(first_seen=ts, last_seen=ts, identified=True)
            elif ts < upd.first_seen:
                upd.first_seen = ts
            elif ts > upd.last_seen:
                upd.last_seen = ts
    # Traits in timestamp order, rows of the same time in batch order.
    for _, index, row_traits, context in sorted(identifies, key=lambda item: item[:2]):
        upd = updates[keys[index]]
        traits: Mapping[str, Any] = row_traits or {}
        upd.traits.update(traits)
        for column, names in _CONTACT_TRAITS.items():
            value = next((traits[n] for n in names if traits.get(n) not in (None, "")), None)
            if value is not None:
                upd.contact[column] = str(value)
        name = traits.get("name")
        if isinstance(name, str) and name.strip() and "first_name" not in upd.contact:
            first, _, last = name.strip().partition(" ")
            upd.contact["first_name"] = first
            if last:
                upd.contact["last_name"] = last.strip()
        if "timezone" not in upd.contact:
            tz = (context or {}).get("timezone")
            if isinstance(tz, str) and tz:
                upd.contact["timezone"] = tz
        consent = traits.get("consent")
        if isinstance(consent, Mapping):
            upd.consent.update({str(k): bool(v) for k, v in consent.items()})
    return updates


class Mover:
    """Moves the inbox into the event store, one batch at a time. Run it in one process only.

    Args:
        db: the operational store.
        store: the DuckDB event store — an open :class:`EventStore` this process keeps (tests,
            one-shot tools), or the path of its file, opened for each batch and closed after:
            DuckDB lets one process write *or* several read a file, so ``wayline serve``'s API
            workers can read analytics between batches (see
            :mod:`wayline.storage.analytics_access`). A batch that finds the file held by a
            reader waits for it, with backoff; the inbox keeps the events meanwhile.
        batch_size: messages per batch (whole requests: a batch ends with the request that
            reaches it).
        interval: seconds between polls when the inbox is empty.
        foreground: runs each of the mover's write transactions on the operational store (the
            ids taken, the marking), which hold SQLite's write lock, that every API commit
            waits for. ``wayline serve`` runs the mover's thread in the idle CPU class, where it
            gets the CPU only when nothing else wants it: holding the lock there, it would keep
            the API waiting for as long as other work keeps the cores busy. There the
            transactions run in a thread of normal priority, the mover waiting meanwhile.
            Default: in the calling thread.
        hold_seconds: while :meth:`drain` or :meth:`run_forever` find full batches waiting
            (the mover is behind), the file stays open from one batch to the next for up to
            this long: opening it costs ~28 ms of CPU and closing it a checkpoint, about a
            fifth of a batch's cost. Then it is closed while the next batch is prepared, so
            readers get in; it is closed as soon as a batch is not full.
    """

    def __init__(
        self,
        db: Database,
        store: EventStore | Path,
        *,
        batch_size: int = 10_000,
        interval: float = 1.0,
        lock_timeout: float = 60.0,
        hold_seconds: float = 1.0,
        foreground: Foreground = _here,
    ) -> None:
        self.db = db
        self._foreground = foreground
        self._store = store
        self.batch_size = batch_size
        self.interval = interval
        self.lock_timeout = lock_timeout
        self.hold_seconds = hold_seconds
        self._held: EventStore | None = None
        self._held_until = 0.0

    @contextmanager
    def _writing(self, *, hold: bool = False) -> Iterator[EventStore]:
        """The event store for one batch; with ``hold``, left open after it if the time to
        hold it is not over (see ``hold_seconds``)."""
        if isinstance(self._store, EventStore):
            yield self._store
            return
        store, self._held = self._held, None
        if store is None:
            store = open_when_free(self._store, read_only=False, timeout=self.lock_timeout)
            self._held_until = time.monotonic() + self.hold_seconds
        try:
            yield store
        except BaseException:
            store.close()
            raise
        if hold and time.monotonic() < self._held_until:
            self._held = store
        else:
            store.close()

    def release(self) -> None:
        """Close the event store if it was left open between batches."""
        store, self._held = self._held, None
        if store is not None:
            store.close()

    # -- one batch -------------------------------------------------------------------------

    def move_batch(self, limit: int | None = None, *, now: datetime | None = None) -> int:
        """Move the oldest pending requests, about ``limit`` (default ``batch_size``) messages;
        returns how many messages they held.

        The count is of messages handled (appended, dropped as another copy of an event, or
        found already appended after a crash); 0 means the inbox has nothing pending.
        """
        return self._move_batch(limit or self.batch_size, now=now, hold=False)

    def _move_batch(self, limit: int, *, now: datetime | None, hold: bool) -> int:
        try:
            pending = self._pending(limit)
        except BaseException:
            self.release()
            raise
        if not pending:
            self.release()
            return 0
        count = int(sum(p[4] for p in pending))
        try:
            self._move(pending, now=now, hold=hold and count >= limit)
        except BaseException:
            self.release()
            raise
        return count

    def _move(self, pending: Sequence[Any], *, now: datetime | None, hold: bool) -> None:
        with _no_cycle_collection():
            batch = _normalise(pending)
            rows, inbox_ids = self._take_ids(batch)
            moved_ids = [p[0] for p in pending if p[0] not in batch.failed_ids]
            requests = [(p[0], p[1], p[2]) for p in pending]
            with self._writing(hold=hold) as store:
                self._append_to_analytics(store, rows, inbox_ids, requests)
                self._mark_moved(
                    moved_ids, sorted(batch.failed_ids), rows, now or datetime.now(UTC)
                )
                for workspace_id in sorted({row[_WORKSPACE] for row in rows}):
                    resolve_identities(store, workspace_id)

    def _pending(self, messages: int) -> list[Any]:
        """The oldest pending requests holding about ``messages`` messages (at least one)."""
        with self.db.read() as conn:
            sizes = conn.execute(
                select(InboxRequest.id, InboxRequest.message_count)
                .where(InboxRequest.moved_at.is_(None))
                .order_by(InboxRequest.id)
                .limit(messages)
            ).all()
            if not sizes:
                return []
            total = 0
            chosen = []
            for inbox_id, count in sizes:
                chosen.append(inbox_id)
                total += count
                if total >= messages:
                    break
            return list(
                conn.execute(
                    select(
                        InboxRequest.id,
                        InboxRequest.workspace_id,
                        InboxRequest.received_at,
                        InboxRequest.payload,
                        InboxRequest.message_count,
                    )
                    .where(InboxRequest.id.in_(chosen))
                    .order_by(InboxRequest.id)
                ).all()
            )

    def _take_ids(self, batch: _Batch) -> tuple[list[tuple[Any, ...]], list[int]]:
        """The rows of the batch whose copy is stored, and their requests' ids (see the module
        docstring, step 3).

        Each id is offered to the oldest request holding it, in one statement; when every id
        offered is taken by it (the usual case: nothing was re-sent), that decides them all.
        Otherwise some ids were taken before (a retry of an event moved earlier, a live
        journey's request, this batch before a crash), and every offered id's owner is looked
        up, outside the write transaction.
        """
        rows, inbox_ids = batch.rows, batch.inbox_ids
        if not rows:
            return [], []
        keys = [(row[_WORKSPACE], row[_MESSAGE_ID]) for row in rows]
        # The oldest request holding each id: built backwards, so the oldest is written last.
        offered = dict(zip(reversed(keys), reversed(inbox_ids), strict=True))
        taken = self._claim(offered)
        if taken == len(offered):
            owners = offered
            if len(offered) == len(rows):  # every row holds an id of its own
                return rows, inbox_ids
        else:
            owners = self._owners(list(offered))
        kept = [
            (row, inbox_id)
            for row, key, inbox_id in zip(rows, keys, inbox_ids, strict=True)
            if owners.get(key) == inbox_id
        ]
        return [row for row, _ in kept], [inbox_id for _, inbox_id in kept]

    def _claim(self, offered: Mapping[tuple[str, str], int]) -> int:
        """Take the ids not taken yet for the request offered; returns how many were taken.

        One statement per workspace and :data:`_CLAIMS_PER_TRANSACTION` ids (per-row inserts
        were a fifth of the mover's time), each in a write transaction of its own: the API's
        commits wait for the write lock meanwhile, and a batch's 10,000 ids in one transaction
        held it ~20 ms. Taking an id is final by itself, so the split changes no decision: after
        a crash between two parts, the ids taken are held by the batch's own requests, which is
        what the next attempt decides for them anyway.
        """
        taken = 0
        for workspace_id, claims in _by_workspace(offered).items():
            items = list(claims.items())
            for start in range(0, len(items), _CLAIMS_PER_TRANSACTION):
                part = dict(items[start : start + _CLAIMS_PER_TRANSACTION])
                params = {"ws": workspace_id, "claims": orjson.dumps(part).decode()}
                taken += self._foreground(partial(self._claim_part, params))
        return taken

    def _claim_part(self, params: Mapping[str, Any]) -> int:
        with self.db.write() as conn:
            return int(conn.execute(_CLAIM_SQL[self.db.dialect], params).rowcount)

    def _owners(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The request holding each taken id: ``(workspace_id, message_id)`` → inbox id."""
        wanted: dict[str, list[str]] = {}
        for workspace_id, message_id in keys:
            wanted.setdefault(workspace_id, []).append(message_id)
        owners: dict[tuple[str, str], int] = {}
        with self.db.read() as conn:
            for workspace_id, ids in wanted.items():
                for start in range(0, len(ids), _IDS_PER_QUERY):
                    owners.update(
                        ((workspace_id, message_id), inbox_id)
                        for message_id, inbox_id in conn.execute(
                            select(InboxMessageId.message_id, InboxMessageId.inbox_id).where(
                                InboxMessageId.workspace_id == workspace_id,
                                InboxMessageId.message_id.in_(ids[start : start + _IDS_PER_QUERY]),
                            )
                        )
                    )
        return owners

    def _append_to_analytics(
        self,
        store: EventStore,
        rows: Sequence[tuple[Any, ...]],
        inbox_ids: Sequence[int],
        requests: Sequence[tuple[int, str, datetime]],
    ) -> int:
        """Append the rows of the requests whose rows DuckDB does not hold yet, and record the
        requests as appended, in one DuckDB transaction (see the module docstring, step 4)."""
        if not rows:  # every message was another copy of an event: nothing to record either
            return 0
        # A cursor of its own: its registered table and results cannot clash with anything
        # else using the store's connection (DuckDB refuses new work on a connection that has
        # an unfinished result).
        con = store.con.cursor()
        try:
            con.execute("BEGIN")
            try:
                con.execute(_APPENDED_DDL)
                marks = [(i, w, epoch_micros(at)) for i, w, at in requests]
                done = set(con.execute("SELECT * FROM mover_appended").fetchall()) & set(marks)
                if done:  # a crash after a batch's append, before its marking
                    skip = {mark[0] for mark in done}
                    rows = [
                        row
                        for row, inbox_id in zip(rows, inbox_ids, strict=True)
                        if inbox_id not in skip
                    ]
                con.execute(
                    "DELETE FROM mover_appended WHERE inbox_id <= $1",
                    [max(mark[0] for mark in marks)],
                )
                con.execute(
                    "INSERT INTO mover_appended SELECT unnest($1), unnest($2), unnest($3)",
                    [list(column) for column in zip(*marks, strict=True)],
                )
                if rows:
                    con.register("_moving", _arrow(rows))
                    con.execute("INSERT INTO events SELECT * FROM _moving")
                    con.unregister("_moving")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()
        return len(rows)

    def _mark_moved(
        self,
        moved_ids: Sequence[int],
        failed_ids: Sequence[int],
        rows: Sequence[tuple[Any, ...]],
        now: datetime,
    ) -> None:
        """Mark the batch moved and apply its profile updates, in one transaction."""
        keys = [(row[_WORKSPACE], row[_PERSON]) for row in rows]
        times = [row[_TIMESTAMP] for row in rows]
        identified = _identified(
            keys,
            times,
            [
                (row[_TIMESTAMP], i, row[_TRAITS], row[_CONTEXT])
                for i, row in enumerate(rows)
                if row[_TYPE] == "identify"
            ],
        )
        last_seen = _last_seen(keys, times)

        def mark() -> None:
            with self.db.write() as conn:
                if moved_ids:
                    with _freed_unzeroed(conn):
                        conn.execute(
                            update(InboxRequest)
                            .where(InboxRequest.id.in_(moved_ids))
                            .values(moved_at=now, payload=None)
                        )
                if failed_ids:
                    conn.execute(
                        update(InboxRequest)
                        .where(InboxRequest.id.in_(failed_ids))
                        .values(moved_at=now)
                    )
                _apply_profile_updates(conn, identified, last_seen, dialect=self.db.dialect)

        self._foreground(mark)

    # -- the loop --------------------------------------------------------------------------

    def catch_up_identities(self) -> None:
        """Resolve identities of every workspace (after a crash between moving and resolving)."""
        with self.db.read() as conn:
            workspaces = list(conn.scalars(select(Workspace.id)))
        with self._writing() as store:
            for workspace_id in workspaces:
                resolve_identities(store, workspace_id)

    def drain(self) -> int:
        """Move everything pending now; returns how many events were moved."""
        total = 0
        try:
            while moved := self._move_batch(self.batch_size, now=None, hold=True):
                total += moved
        finally:
            self.release()
        return total

    def run_forever(self, stop: threading.Event) -> None:
        """Move batches until ``stop`` is set, then move what is left and return.

        Meant for a background thread. An error is logged and retried after ``interval``:
        nothing is lost, the batch is still pending.
        """
        try:
            self.catch_up_identities()
        except Exception:
            log.exception("identity catch-up failed; continuing")
        while not stop.is_set():
            try:
                moved = self._move_batch(self.batch_size, now=None, hold=True)
            except Exception:
                log.exception("moving events failed; retrying in %.1fs", self.interval)
                moved = 0
            if moved < self.batch_size:
                stop.wait(self.interval)
        self.drain()


def apply_profile_updates(
    conn: Connection, updates: Mapping[tuple[str, str], ProfileUpdate], *, dialect: str
) -> None:
    """Upsert the profiles of identified persons; bump ``last_seen`` of the others' profiles."""
    _apply_profile_updates(
        conn,
        {key: u for key, u in updates.items() if u.identified},
        {key: u.last_seen for key, u in updates.items()},
        dialect=dialect,
    )


def _apply_profile_updates(
    conn: Connection,
    identified: Mapping[tuple[str, str], ProfileUpdate],
    last_seen: Mapping[tuple[str, str], datetime],
    *,
    dialect: str,
) -> None:
    """:func:`apply_profile_updates` of the identified persons' updates and every person's
    last time seen. Each kind of change is one statement, compiled once (an update per
    profile, with values of its own, compiled per profile: a third of the mover's time)."""
    existing: dict[tuple[str, str], Any] = {}
    if identified:
        wanted = list(identified)
        query = select(CustomerProfile).where(
            CustomerProfile.workspace_id.in_({w for w, _ in wanted}),
            CustomerProfile.person_id.in_({p for _, p in wanted}),
        )
        if dialect == "postgresql":
            query = query.with_for_update()
        for profile in conn.execute(query).all():
            existing[(profile.workspace_id, profile.person_id)] = profile
    inserts, changes = [], []
    for key, upd in identified.items():
        old = existing.get(key)
        if old is None:
            inserts.append(
                {
                    "workspace_id": key[0],
                    "person_id": key[1],
                    "consent": upd.consent,
                    "traits": upd.traits,
                    "first_seen": upd.first_seen,
                    "last_seen": upd.last_seen,
                    **{c: upd.contact.get(c) for c in _CONTACT_TRAITS},
                }
            )
            continue
        changes.append(
            {
                "_id": old.id,
                "_consent": {**(old.consent or {}), **upd.consent},
                "_traits": {**(old.traits or {}), **upd.traits},
                "_first_seen": min(old.first_seen, upd.first_seen),
                "_last_seen": max(old.last_seen, upd.last_seen),
                **{f"_{c}": upd.contact.get(c, getattr(old, c)) for c in _CONTACT_TRAITS},
            }
        )
    if changes:
        conn.execute(_PROFILE_UPDATE, changes)
    if inserts:
        conn.execute(insert(CustomerProfile), inserts)
    others = {key: at for key, at in last_seen.items() if key not in identified}
    if others:
        # As text, once per distinct time (a request's events often share one).
        form = _seen_text(conn)
        texts = {at: form(at) for at in set(others.values())}
        for workspace_id, seen in _by_workspace(others).items():
            conn.execute(
                _SEEN_SQL[dialect],
                {
                    "ws": workspace_id,
                    "seen": orjson.dumps({p: texts[at] for p, at in seen.items()}).decode(),
                },
            )


def _seen_text(conn: Connection) -> Callable[[datetime], str]:
    """How the dialect's ``last_seen`` column holds a time, as text for a JSON parameter."""
    if conn.dialect.name == "sqlite":  # naive UTC text, as Core writes it (compared as text)
        return lambda at: at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return lambda at: at.astimezone(UTC).isoformat()


_PROFILE_COLUMNS = CustomerProfile.__table__.c
_PROFILE_UPDATE = (
    update(CustomerProfile)
    .where(CustomerProfile.id == bindparam("_id"))
    .values(
        {
            name: bindparam(f"_{name}", type_=_PROFILE_COLUMNS[name].type)
            for name in ("consent", "traits", "first_seen", "last_seen", *_CONTACT_TRAITS)
        }
    )
)
