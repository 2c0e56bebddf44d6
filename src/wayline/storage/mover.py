"""The mover: carries acknowledged events from the operational store's inbox into DuckDB.

The tracking API commits requests to the inbox (many writers, durable on commit; one row per
request, its messages as one JSON array); analytics read them from DuckDB's ``events`` table.
The mover runs in exactly one process (DuckDB allows one writer process per file) and, batch
after batch:

1. reads inbox requests not yet moved, oldest first, about ``batch_size`` messages;
2. normalises their messages (:func:`wayline.events.normalize.normalize`; they were validated
   when received);
3. takes each message's id in ``inbox_message_ids`` (one operational-store transaction), which
   decides which copy of a re-sent event is stored: the one whose request holds the id;
4. appends the events whose copy it holds to DuckDB in one DuckDB transaction;
5. in one operational-store transaction, marks the requests moved (clearing the payload) and
   brings the customer profiles up to date from the batch's ``identify`` calls;
6. resolves identities (:func:`wayline.storage.identity.resolve_identities`) for the
   workspaces in the batch.

Once per ``messageId``. The tracking API stores a client's retry as it stores any request
(looking it up there would put an index probe per event under the write lock every API worker
waits for). Step 3 picks the copy: an id already taken keeps its request (an earlier move, or a
request of a workspace with a live journey, whose ids are taken on arrival); a new id goes to
the batch's oldest request holding it. Only that request's copy is stored. A crash after step 3
finds the ids taken by the batch's own requests the next time, which is the same decision.

Exactly once. The two stores cannot commit together, so a crash can fall between step 4 and
step 5: the rows are in DuckDB but still pending in the inbox, and the next batch reads them
again. Step 4 therefore appends only the rows DuckDB does not already hold: an anti-join on
``(workspace_id, message_id)``, restricted to the batch's ``received_at`` range. A row already
moved has exactly the ``received_at`` of its inbox request, so the restriction loses nothing,
and it lets DuckDB's zone maps (min/max per row group) skip every row group outside the range:
the check reads the few most recent row groups, not the table.

A watermark (the highest inbox id moved, committed in the same DuckDB transaction) was the
alternative; it is cheaper but wrong on PostgreSQL with several API processes: ids are drawn
from a sequence when a transaction *starts* writing and become visible when it *commits*, so id
101 can be visible while id 100 is still uncommitted; a watermark at 101 would skip 100 forever.
Selecting by "not moved yet" has no such gap, and step 5 is idempotent.

Profiles are updated in the same transaction as the marking, so a batch's traits are applied
exactly once too. Identity resolution keeps its own watermark over DuckDB rows, so a crash
before step 6 is made good by the next call, which the mover also makes once when it starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, insert, select, update

from wayline.errors import InputError
from wayline.events.normalize import normalize
from wayline.storage.analytics_access import open_when_free
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore, rows_to_arrow
from wayline.storage.identity import resolve_identities
from wayline.storage.models import (
    CustomerProfile,
    InboxMessageId,
    InboxRequest,
    UTCDateTime,
    Workspace,
)

log = logging.getLogger(__name__)

# Ids looked up per query: well under SQLite's 32,766 bound parameters.
_IDS_PER_QUERY = 2000

_CONTACT_TRAITS = {
    "email": ("email",),
    "phone": ("phone",),
    "first_name": ("firstName", "first_name"),
    "last_name": ("lastName", "last_name"),
    "timezone": ("timezone",),
}


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
    updates: dict[tuple[str, str], ProfileUpdate] = {}
    for row in sorted(rows, key=lambda r: r["timestamp"]):
        key = (row["workspace_id"], row["person_id"])
        ts = row["timestamp"]
        upd = updates.get(key)
        if upd is None:
            upd = updates[key] = ProfileUpdate(first_seen=ts, last_seen=ts)
        upd.first_seen = min(upd.first_seen, ts)
        upd.last_seen = max(upd.last_seen, ts)
        if row["type"] != "identify":
            continue
        upd.identified = True
        traits: Mapping[str, Any] = row["traits"] or {}
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
            tz = (row["context"] or {}).get("timezone")
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
    """

    def __init__(
        self,
        db: Database,
        store: EventStore | Path,
        *,
        batch_size: int = 2000,
        interval: float = 1.0,
        lock_timeout: float = 60.0,
    ) -> None:
        self.db = db
        self._store = store
        self.batch_size = batch_size
        self.interval = interval
        self.lock_timeout = lock_timeout

    @contextmanager
    def _writing(self) -> Iterator[EventStore]:
        if isinstance(self._store, EventStore):
            yield self._store
            return
        store = open_when_free(self._store, read_only=False, timeout=self.lock_timeout)
        try:
            yield store
        finally:
            store.close()

    # -- one batch -------------------------------------------------------------------------

    def move_batch(self, limit: int | None = None, *, now: datetime | None = None) -> int:
        """Move the oldest pending requests, about ``limit`` (default ``batch_size``) messages;
        returns how many messages they held.

        The count is of messages handled (appended, dropped as another copy of an event, or
        found already appended after a crash); 0 means the inbox has nothing pending.
        """
        pending = self._pending(limit or self.batch_size)
        if not pending:
            return 0
        candidates: list[tuple[int, dict[str, Any]]] = []
        failed_ids: set[int] = set()
        for inbox_id, workspace_id, received_at, payload, _ in pending:
            try:
                messages = orjson.loads(payload or b"[]")
            except orjson.JSONDecodeError as exc:
                log.error("inbox request %s is not JSON, left aside: %s", inbox_id, exc)
                failed_ids.add(inbox_id)
                continue
            for index, message in enumerate(messages):
                try:
                    row = normalize(message, workspace_id=workspace_id, received_at=received_at)
                except InputError as exc:
                    # Validated on the way in, so only a change of the rules lands here. The
                    # request is marked moved with its payload kept, to be found and replayed
                    # by hand (its other messages are moved: a replay stores them once).
                    log.error(
                        "inbox request %s, message %s cannot be normalised, left aside: %s",
                        inbox_id,
                        index,
                        exc,
                    )
                    failed_ids.add(inbox_id)
                    continue
                candidates.append((inbox_id, row))
        owners = self._take_ids(candidates)
        rows = [
            row
            for inbox_id, row in candidates
            if owners.get((row["workspace_id"], row["message_id"])) == inbox_id
        ]
        moved_ids = [p[0] for p in pending if p[0] not in failed_ids]
        with self._writing() as store:
            self._append_to_analytics(store, rows, [p[2] for p in pending])
            self._mark_moved(moved_ids, sorted(failed_ids), rows, now or datetime.now(UTC))
            for workspace_id in sorted({r["workspace_id"] for r in rows}):
                resolve_identities(store, workspace_id)
        return sum(p[4] for p in pending)

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

    def _take_ids(
        self, candidates: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> dict[tuple[str, str], int]:
        """Which request's copy of each event is stored: ``(workspace_id, message_id)`` → inbox
        request id, for every event of the batch (see the module docstring, step 3).

        Each id is offered to the oldest request holding it; the ids taken before (a retry of
        an event moved earlier, a live journey's request, this batch before a crash) are then
        looked up, outside the write transaction. Most ids are new: one insert decides them.
        """
        offered: dict[tuple[str, str], int] = {}
        for inbox_id, row in candidates:  # oldest request first
            offered.setdefault((row["workspace_id"], row["message_id"]), inbox_id)
        if not offered:
            return {}
        with self.db.write() as conn:
            taken = self.db.claim_message_ids(conn, [(w, m, i) for (w, m), i in offered.items()])
        owners = {key: offered[key] for key in taken}
        earlier: dict[str, list[str]] = {}
        for workspace_id, message_id in offered.keys() - owners.keys():
            earlier.setdefault(workspace_id, []).append(message_id)
        if not earlier:
            return owners
        with self.db.read() as conn:
            for workspace_id, ids in earlier.items():
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
        self, store: EventStore, rows: Sequence[Mapping[str, Any]], times: Sequence[datetime]
    ) -> int:
        """Append the rows DuckDB does not hold yet, in one DuckDB transaction."""
        if not rows:
            return 0
        # A cursor of its own: its registered table and results cannot clash with anything
        # else using the store's connection (DuckDB refuses new work on a connection that has
        # an unfinished result).
        con = store.con.cursor()
        try:
            con.register("_moving", rows_to_arrow(rows))
            con.execute("BEGIN")
            try:
                result = con.execute(
                    """
                    INSERT INTO events
                    SELECT m.* FROM _moving m
                    WHERE NOT EXISTS (
                        SELECT 1 FROM events e
                        WHERE e.received_at BETWEEN $lo AND $hi
                          AND e.workspace_id = m.workspace_id
                          AND e.message_id = m.message_id
                    )
                    """,
                    {"lo": min(times), "hi": max(times)},
                ).fetchall()
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()
        return int(result[0][0]) if result else 0

    def _mark_moved(
        self,
        moved_ids: Sequence[int],
        failed_ids: Sequence[int],
        rows: Sequence[Mapping[str, Any]],
        now: datetime,
    ) -> None:
        """Mark the batch moved and apply its profile updates, in one transaction."""
        with self.db.write() as conn:
            if moved_ids:
                conn.execute(
                    update(InboxRequest)
                    .where(InboxRequest.id.in_(moved_ids))
                    .values(moved_at=now, payload=None)
                )
            if failed_ids:
                conn.execute(
                    update(InboxRequest).where(InboxRequest.id.in_(failed_ids)).values(moved_at=now)
                )
            apply_profile_updates(conn, profile_updates(rows), dialect=self.db.dialect)

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
        while moved := self.move_batch():
            total += moved
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
                moved = self.move_batch()
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
    if not updates:
        return
    identified = {k: u for k, u in updates.items() if u.identified}
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
    inserts = []
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
        conn.execute(
            update(CustomerProfile)
            .where(CustomerProfile.id == old.id)
            .values(
                consent={**(old.consent or {}), **upd.consent},
                traits={**(old.traits or {}), **upd.traits},
                first_seen=min(old.first_seen, upd.first_seen),
                last_seen=max(old.last_seen, upd.last_seen),
                **upd.contact,
            )
        )
    if inserts:
        conn.execute(insert(CustomerProfile), inserts)
    others = [
        {"ws": ws, "pid": pid, "seen": u.last_seen}
        for (ws, pid), u in updates.items()
        if not u.identified
    ]
    if others:
        seen = bindparam("seen", type_=UTCDateTime())
        conn.execute(
            update(CustomerProfile)
            .where(
                CustomerProfile.workspace_id == bindparam("ws"),
                CustomerProfile.person_id == bindparam("pid"),
                CustomerProfile.last_seen < seen,
            )
            .values(last_seen=seen),
            others,
        )
