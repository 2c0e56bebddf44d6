"""The claim → apply → commit loop: tracked events and due timers move customers on.

One batch is one transaction:

1. **claim** a batch of work: queued events (``journey_inputs``, oldest first) or due timers
   (``journey_timers``, earliest first). On PostgreSQL the rows are locked ``FOR UPDATE SKIP
   LOCKED``, so any number of ``wayline worker`` processes share the queue without waiting on
   each other; on SQLite the write transaction starts with ``BEGIN IMMEDIATE`` (one writer at a
   time, which is what SQLite offers anyway).
2. **lock the customers** of the batch (PostgreSQL: a transaction-scoped advisory lock per
   (workspace, person), taken in one sorted order so two batches cannot deadlock). Everything a
   transition reads or writes — the instance, its timers, the outbox rows it adds — belongs to
   one customer, so two workers never move the same customer at once. Events of one customer are
   applied in arrival order: a batch leaves alone a customer whose earlier event is still held by
   another worker (it is picked up again once that one committed).
3. **apply** the pure engine (:func:`wayline.journeys.engine.enter` / ``handle``) to each item,
   in memory: entry decisions (:func:`wayline.journeys.entry.decide_entry`), new state, effects.
4. **commit** in the same transaction: instance states, new timers, outbox rows (sends and
   webhooks, each keyed by the engine's idempotency key ``<instance>/<step>/<attempt>``), step
   records and their counts (:mod:`wayline.journeys.runtime.records`) and profile updates; and
   delete the claimed inputs and timers. Sends that need nothing outside the database (the
   ``log`` channel, no template to render) are delivered in this transaction too
   (:meth:`wayline.journeys.runtime.deliver.Deliverer.settle`): their outbox rows are inserted
   already marked.

A crash anywhere before the commit leaves nothing behind (the transaction rolls back, the locks
go with the connection) and the work is claimed again; after the commit, it is done exactly
once. Cancelled timers are not deleted: a timer that no longer matches its instance is a no-op
for the engine, and leaving it spares a lock on a row another worker may be claiming.

Why a queue table rather than reading the inbox: the inbox is the mover's queue (rows are
marked moved, payloads cleared), and most workspaces have no live journey. The tracking API
writes an event into ``journey_inputs`` in the transaction that acknowledges it, only for
workspaces with a live journey (:meth:`wayline.storage.db.Database.journey_workspaces`), so the
runtime sees each acknowledged event exactly once and the hot path stays as it was. Events
loaded by bulk imports go straight to the analytics store and trigger no journey.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from wayline.errors import WaylineError
from wayline.events.normalize import parse_timestamp
from wayline.events.schema import CALL_EVENT_NAMES
from wayline.journeys.engine import (
    CallWebhook,
    EventInput,
    InstanceState,
    RecordKind,
    ScheduleTimer,
    SendMessage,
    Status,
    StepRecord,
    TimerInput,
    Transition,
    UpdateProfile,
    enter,
    handle,
    instance_id_for,
)
from wayline.journeys.entry import EntryLedger, JourneyStatus, decide_entry, triggered_by
from wayline.journeys.matching import Event
from wayline.journeys.model import EventMatcher, Journey
from wayline.journeys.runtime.bulk import (
    Later,
    inline,
    insert_rows,
    json_text,
    json_value,
    keys_json,
    member_of,
    probe,
    update_rows,
)
from wayline.journeys.runtime.catalog import JourneyCatalog
from wayline.journeys.runtime.records import TEXT, Row, record_row, write_records
from wayline.journeys.runtime.statistics import Statistics
from wayline.storage.db import Database
from wayline.storage.journey_models import (
    InputRow,
    InstanceRow,
    OutboxRow,
    TimerRow,
)
from wayline.storage.models import CustomerProfile

log = logging.getLogger(__name__)

#: Counts a customer's past events for event-history conditions: (workspace, person, matcher,
#: since, until) → count. The analytics store answers it where one is reachable.
EventHistory = Callable[[str, str, EventMatcher, datetime | None, datetime], int]

#: Delivers, in the advancer's transaction, the new outbox rows that need nothing outside it
#: (:meth:`wayline.journeys.runtime.deliver.Deliverer.settle`): (connection, rows about to be
#: inserted, updated in place, now) → their step records.
Settle = Callable[[Connection, Sequence[dict[str, Any]], datetime], list["Row"]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def dump(value: Any) -> str:
    """A state or an effect as JSON text, in the shape :func:`wayline.journeys.engine.to_plain`
    gives and :meth:`InstanceState.from_plain` reads (orjson serialises the dataclasses,
    datetimes and enums itself: ten times faster than walking them in Python)."""
    return orjson.dumps(value, default=_json_default).decode()


def person_lock_key(workspace_id: str, person_id: str) -> int:
    """A signed 64-bit advisory lock key for one customer (stable across processes)."""
    digest = hashlib.blake2b(f"{workspace_id}\x00{person_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def event_of(payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, dict[str, Any]]:
    """A tracked (Segment) message as the engine's :class:`Event`, and its traits.

    Only the parts journeys read; the full normalisation is the mover's job. The message was
    validated when it was accepted.
    """
    mtype = payload.get("type", "track")
    name = payload.get("event") if mtype == "track" else CALL_EVENT_NAMES.get(str(mtype), mtype)
    raw_ts = payload.get("timestamp") or payload.get("sentAt") or payload.get("originalTimestamp")
    at = parse_timestamp(raw_ts) if raw_ts is not None else received_at
    person = str(payload.get("userId") or payload.get("anonymousId") or "")
    props = payload.get("properties") or {}
    traits = payload.get("traits") or {}
    return (
        Event(str(name), person, at, props if isinstance(props, Mapping) else {}),
        dict(traits) if isinstance(traits, Mapping) else {},
    )


@dataclass
class _Facts:
    """:class:`wayline.journeys.matching.PersonFacts` for one customer during a batch."""

    workspace_id: str
    person_id: str
    traits: dict[str, Any]
    history: EventHistory | None
    segments: frozenset[str] = frozenset()

    def count_events(self, matcher: EventMatcher, since: datetime | None, until: datetime) -> int:
        if self.history is None:
            return 0
        return self.history(self.workspace_id, self.person_id, matcher, since, until)


@dataclass
class _Profile:
    traits: dict[str, Any]
    dirty: bool = False
    updates: dict[str, Any] = field(default_factory=dict)
    unset: set[str] = field(default_factory=set)


@dataclass
class _Instance:
    state: InstanceState
    entry_number: int
    new: bool
    dirty: bool = False
    row_id: int | None = None


@dataclass
class _Batch:
    """The in-memory working set of one transaction."""

    workspace_id: str
    now: datetime
    instances: dict[str, _Instance] = field(default_factory=dict)
    """instance id → instance (active ones loaded, plus those created or ended here)."""
    active: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    """person → journey id → active instance id."""
    ledger: dict[tuple[str, str], tuple[int, datetime | None]] = field(default_factory=dict)
    """(journey, person) → (entries so far, last entry time)."""
    profiles: dict[str, _Profile] = field(default_factory=dict)
    timers: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    records: list[Row] = field(default_factory=list)
    entries_last_hour: dict[str, int] = field(default_factory=dict)
    transitions: int = 0


class _Statements:
    """The statements every batch runs, built once (SQLAlchemy would build, key and look each
    up again per batch; see :class:`wayline.journeys.runtime.bulk.Later`)."""

    def __init__(self, postgres: bool) -> None:
        inputs = (
            select(InputRow.id, InputRow.workspace_id, InputRow.person_id,
                   InputRow.received_at, InputRow.payload)
            .order_by(InputRow.id)
            .limit(bindparam("limit"))
        )  # fmt: skip
        timers = (
            select(TimerRow.id, TimerRow.workspace_id, TimerRow.timer_id,
                   TimerRow.instance_id, TimerRow.person_id)
            .where(TimerRow.due_at <= bindparam("now", type_=TimerRow.due_at.type))
            .order_by(TimerRow.due_at)
            .limit(bindparam("limit"))
        )  # fmt: skip
        if postgres:
            inputs = inputs.with_for_update(skip_locked=True)
            timers = timers.with_for_update(skip_locked=True)
        self.inputs = inputs
        self.timers = timers
        ids = Later("keys", integer=True)
        self.delete_inputs = delete(InputRow).where(member_of(InputRow.id, ids, postgres))
        self.delete_timers = delete(TimerRow).where(member_of(TimerRow.id, ids, postgres))
        # The active instances of a batch's customers (``{"ws", "keys"}``).
        active = select(
            InstanceRow.id, InstanceRow.instance_id, InstanceRow.entry_number, InstanceRow.state
        ).where(
            InstanceRow.workspace_id == bindparam("ws"),
            InstanceRow.status == inline(Status.ACTIVE.value),
        )
        self.active = probe(active, InstanceRow.person_id, Later("keys"), postgres)
        # Each customer's earliest queued event (``{"ws", "keys"}``; PostgreSQL's ``_in_order``).
        lowest = (
            select(InputRow.person_id, func.min(InputRow.id).label("lowest"))
            .where(InputRow.workspace_id == bindparam("ws"))
            .group_by(InputRow.person_id)
        )
        self.lowest_input = probe(lowest, InputRow.person_id, Later("keys"), postgres)
        # SQLite's entry ledger (``{"ws", "journeys", "keys"}``; PostgreSQL: ``Advancer._ledger``).
        self.ledger = (
            select(
                InstanceRow.journey_id,
                InstanceRow.person_id,
                func.max(InstanceRow.entry_number),
                func.max(InstanceRow.entered_at),
            )
            .where(
                InstanceRow.workspace_id == bindparam("ws"),
                InstanceRow.journey_id.in_(bindparam("journeys", expanding=True)),
                member_of(InstanceRow.person_id, Later("keys"), False),
            )
            .group_by(InstanceRow.journey_id, InstanceRow.person_id)
        )


class Advancer:
    """Moves customers through journeys, a batch per transaction (see the module docstring).

    Args:
        db: the operational store.
        catalog: journeys and versions (shared with the deliverer).
        clock: the time transitions happen at (injected in tests).
        batch_size: inputs or timers per transaction.
        history: answers event-history conditions; without one they count no events.
        settle: delivers the sends that need nothing outside the transaction (the ``log``
            channel without rendering) in it; without one, every send goes to the outbox
            for the deliverer.
        queued: called once a batch that left sends or webhooks in the outbox has committed
            (the runtime wakes its deliverer with it instead of having it poll).
    """

    def __init__(
        self,
        db: Database,
        catalog: JourneyCatalog,
        *,
        clock: Callable[[], datetime] = _utcnow,
        batch_size: int = 500,
        history: EventHistory | None = None,
        settle: Settle | None = None,
        queued: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.clock = clock
        self.batch_size = batch_size
        self.history = history
        self.settle = settle
        self.queued = queued
        self.postgres = db.dialect == "postgresql"
        self.statistics = Statistics(db)
        self._statements = _Statements(self.postgres)

    # -- the two kinds of work ------------------------------------------------------------------

    def advance_inputs(self) -> int:
        """Apply one batch of queued events; returns how many were consumed."""
        self.statistics.check()
        if not self._anything(self._statements.inputs, {"limit": 1}):
            return 0
        queued = 0
        with self.db.write() as conn:
            rows = conn.execute(self._statements.inputs, {"limit": self.batch_size}).all()
            if not rows:
                return 0
            self._lock_people(conn, {(r.workspace_id, r.person_id) for r in rows})
            if self.postgres:
                rows = self._in_order(conn, rows)
            now = self.clock()
            by_ws: dict[str, list[Any]] = defaultdict(list)
            for r in rows:
                by_ws[r.workspace_id].append(r)
            records: list[Row] = []
            for workspace_id, items in by_ws.items():
                batch = _Batch(workspace_id, now)
                decoded = [event_of(orjson.loads(r.payload), r.received_at) for r in items]
                live = self.catalog.live(workspace_id)
                people = {r.person_id for r in items}
                entering = {
                    (j.id, e.person_id) for e, _ in decoded for j in live if triggered_by(j, e)
                }
                self._load(conn, batch, people, entering, live)
                for event, traits in decoded:
                    self._on_event(batch, event, traits, live)
                queued += self._flush(conn, batch)
                records += batch.records
            write_records(conn, records, postgres=self.postgres)
            conn.execute(self._statements.delete_inputs, {"keys": keys_json(r.id for r in rows)})
        self._committed(queued)
        return len(rows)

    def advance_timers(self) -> int:
        """Fire one batch of due timers; returns how many were consumed."""
        now = self.clock()
        if not self._anything(self._statements.timers, {"now": now, "limit": 1}):
            return 0
        queued = 0
        with self.db.write() as conn:
            rows = conn.execute(
                self._statements.timers, {"now": now, "limit": self.batch_size}
            ).all()
            if not rows:
                return 0
            self._lock_people(conn, {(r.workspace_id, r.person_id) for r in rows})
            by_ws: dict[str, list[Any]] = defaultdict(list)
            for r in rows:
                by_ws[r.workspace_id].append(r)
            records: list[Row] = []
            for workspace_id, items in by_ws.items():
                batch = _Batch(workspace_id, now)
                self._load(conn, batch, {r.person_id for r in items}, set(), ())
                for r in items:
                    inst = batch.instances.get(r.instance_id)
                    if inst is None or not inst.state.active:
                        continue  # the instance ended: its timers are no-ops
                    self._handle(batch, inst, TimerInput(r.timer_id))
                queued += self._flush(conn, batch)
                records += batch.records
            write_records(conn, records, postgres=self.postgres)
            conn.execute(self._statements.delete_timers, {"keys": keys_json(r.id for r in rows)})
        self._committed(queued)
        return len(rows)

    def _committed(self, queued: int) -> None:
        if queued and self.queued is not None:
            self.queued()

    # -- claiming -------------------------------------------------------------------------------

    def _anything(self, claim: Any, params: dict[str, Any]) -> bool:
        """Whether the ``claim`` statement finds a row (asked for one). On SQLite it is asked
        outside the write lock, so that an idle runtime does not take the lock (and hold up the
        tracking API's commits) twice a poll for nothing; on PostgreSQL the claim itself skips
        locked rows and waits for nobody, so it is not asked."""
        if self.postgres:
            return True
        with self.db.read() as conn:
            return conn.execute(claim, params).first() is not None

    def _lock_people(self, conn: Connection, people: Iterable[tuple[str, str]]) -> None:
        if not self.postgres:
            return  # SQLite: BEGIN IMMEDIATE already made this the only writer
        keys = sorted({person_lock_key(w, p) for w, p in people})
        # Sorted, one at a time in that order: two batches wanting the same customers queue
        # behind each other instead of deadlocking.
        # The keys as JSON text, not an array (see ``bulk._listed``).
        conn.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT CAST(value AS bigint) AS k "
                "FROM json_array_elements_text(CAST(:keys AS json)) ORDER BY k OFFSET 0) AS s"
            ),
            {"keys": orjson.dumps(keys).decode()},
        )

    def _in_order(self, conn: Connection, rows: Sequence[Any]) -> list[Any]:
        """Drop inputs of customers who have an earlier input this batch did not claim."""
        first: dict[tuple[str, str], int] = {}
        for r in rows:
            key = (r.workspace_id, r.person_id)
            first[key] = min(first.get(key, r.id), r.id)
        blocked: set[tuple[str, str]] = set()
        by_ws: dict[str, set[str]] = defaultdict(set)
        for w, p in first:
            by_ws[w].add(p)
        for w, people in by_ws.items():
            for person, lowest in conn.execute(
                self._statements.lowest_input, {"ws": w, "keys": keys_json(sorted(people))}
            ).all():
                if lowest < first[(w, person)]:
                    blocked.add((w, person))
        if blocked:
            log.debug("%d customers wait for an earlier event held by another worker", len(blocked))
        return [r for r in rows if (r.workspace_id, r.person_id) not in blocked]

    def _load(
        self,
        conn: Connection,
        batch: _Batch,
        people: set[str],
        entering: set[tuple[str, str]],
        live: Sequence[Journey],
    ) -> None:
        ws = batch.workspace_id
        plist = sorted(people)
        # ``.all()`` (one fetchall) rather than iterating the result, which fetches row by row:
        # 100,000 ``fetchone`` calls were 0.7 s of a 17 s profile of 40,000 transitions.
        active = conn.execute(self._statements.active, {"ws": ws, "keys": keys_json(plist)})
        for row in active.all():
            state = InstanceState.from_plain(orjson.loads(row.state))
            batch.instances[row.instance_id] = _Instance(
                state, row.entry_number, new=False, row_id=row.id
            )
            batch.active[state.person_id][state.journey_id] = row.instance_id
        if self._reads_traits(ws, batch, entering, live):
            traits = select(CustomerProfile.person_id, json_text(CustomerProfile.traits)).where(
                CustomerProfile.workspace_id == ws
            )
            for row in conn.execute(
                probe(traits, CustomerProfile.person_id, plist, self.postgres)
            ).all():
                batch.profiles[row.person_id] = _Profile(json_value(row.traits) or {})
        if entering:
            journeys = sorted({j for j, _ in entering})
            for jid, person, n, last in self._ledger(conn, ws, entering):
                if isinstance(last, str):  # SQLite aggregates lose the column type
                    last = datetime.fromisoformat(last)
                if last is not None and last.tzinfo is None:
                    last = last.replace(tzinfo=UTC)
                batch.ledger[(jid, person)] = (int(n), last)
            for journey in live:
                if journey.entry.max_entries_per_hour is not None and journey.id in journeys:
                    batch.entries_last_hour[journey.id] = int(
                        conn.scalar(
                            select(func.count()).where(
                                InstanceRow.workspace_id == ws,
                                InstanceRow.journey_id == journey.id,
                                InstanceRow.entered_at > batch.now - timedelta(hours=1),
                            )
                        )
                        or 0
                    )

    def _reads_traits(
        self, ws: str, batch: _Batch, entering: set[tuple[str, str]], live: Sequence[Journey]
    ) -> bool:
        """Whether a journey this batch may move customers through reads their profiles
        (:attr:`Journey.reads_traits`): reading and decoding them is a query and a JSON
        document per customer that most journeys never look at."""
        if entering and any(j.reads_traits for j in live):
            return True
        versions = {(i.state.journey_id, i.state.version) for i in batch.instances.values()}
        try:
            return any(self.catalog.version(ws, j, v).reads_traits for j, v in versions)
        except WaylineError:
            return True  # a version it cannot find is left to the engine's own error

    def _ledger(
        self, conn: Connection, ws: str, entering: set[tuple[str, str]]
    ) -> Iterable[Sequence[Any]]:
        """(journey, person, entries so far, last entry time) for the customers entering."""
        if self.postgres:
            # One index probe per (journey, customer) through a LATERAL subquery, whatever the
            # planner believes: with ``person_id IN (SELECT unnest(…))`` and no statistics yet
            # (a freshly filled table, before autovacuum analyses it) it chose a nested loop
            # testing every instance of the journey against every customer of the batch —
            # 290 ms per batch at 10,000 instances and growing, two thirds of a PostgreSQL
            # run's time (measured).
            return conn.execute(
                text(
                    "SELECT e.journey_id, e.person_id, l.n, l.last "
                    "FROM json_to_recordset(CAST(:pairs AS json)) "
                    "AS e(journey_id text, person_id text) "
                    "CROSS JOIN LATERAL (SELECT max(i.entry_number) AS n, "
                    "max(i.entered_at) AS last FROM journey_instances i "
                    "WHERE i.workspace_id = :ws AND i.journey_id = e.journey_id "
                    "AND i.person_id = e.person_id) AS l WHERE l.n IS NOT NULL"
                ),
                {
                    "ws": ws,
                    "pairs": orjson.dumps(
                        [{"journey_id": j, "person_id": p} for j, p in sorted(entering)]
                    ).decode(),
                },
            ).all()
        return conn.execute(
            self._statements.ledger,
            {
                "ws": ws,
                "journeys": sorted({j for j, _ in entering}),
                "keys": keys_json(sorted({p for _, p in entering})),
            },
        ).all()

    # -- applying the engine --------------------------------------------------------------------

    def _facts(self, batch: _Batch, person_id: str) -> _Facts:
        profile = batch.profiles.get(person_id)
        if profile is None:
            profile = batch.profiles[person_id] = _Profile({})
        return _Facts(batch.workspace_id, person_id, profile.traits, self.history)

    def _on_event(
        self, batch: _Batch, event: Event, traits: Mapping[str, Any], live: Sequence[Journey]
    ) -> None:
        facts = self._facts(batch, event.person_id)
        if traits:
            # What the engine sees now; the mover stores the traits in the profile.
            facts.traits.update(traits)
        for instance_id in list(batch.active.get(event.person_id, {}).values()):
            self._handle(batch, batch.instances[instance_id], EventInput(event))
        for journey in live:
            if triggered_by(journey, event):
                self._enter(batch, journey, event, facts)

    def _handle(self, batch: _Batch, inst: _Instance, item: EventInput | TimerInput) -> None:
        state = inst.state
        ws = batch.workspace_id
        if self.catalog.status(ws, state.journey_id) is JourneyStatus.ARCHIVED:
            self._end_archived(batch, inst)
            return
        journey = self.catalog.version(ws, state.journey_id, state.version)
        facts = self._facts(batch, state.person_id)
        transition = handle(journey, state, item, person=facts, now=batch.now)
        if transition.state is state and not transition.effects:
            return  # the input did not concern this instance
        self._apply(batch, inst, transition)

    def _enter(self, batch: _Batch, journey: Journey, event: Event, facts: _Facts) -> None:
        person = event.person_id
        entries, last = batch.ledger.get((journey.id, person), (0, None))
        active = batch.active.get(person, {}).get(journey.id)
        decision = decide_entry(
            journey,
            ledger=EntryLedger(entries, last, active),
            now=batch.now,
            entries_last_hour=batch.entries_last_hour.get(journey.id, 0),
        )
        if not decision.allowed:
            self._record(
                batch,
                StepRecord(
                    RecordKind.ENTRY_REFUSED, "", journey.id, journey.version, person, batch.now,
                    outcome=decision.reason,
                ),
            )  # fmt: skip
            return
        number = entries + 1
        batch.ledger[(journey.id, person)] = (number, batch.now)
        if journey.id in batch.entries_last_hour:
            batch.entries_last_hour[journey.id] += 1
        instance_id = instance_id_for(journey.id, person, number)
        transition = enter(
            journey, instance_id=instance_id, person=facts, now=batch.now, trigger=event
        )
        inst = _Instance(transition.state, number, new=True)
        batch.instances[instance_id] = inst
        self._apply(batch, inst, transition)

    def _end_archived(self, batch: _Batch, inst: _Instance) -> None:
        s = inst.state
        step = s.waiting.step_id if s.waiting else None
        ended = replace(s, status=Status.EXITED, waiting=None, ended_at=batch.now)
        record = StepRecord(
            RecordKind.EXITED, s.instance_id, s.journey_id, s.version, s.person_id, batch.now,
            step_id=step, step_type=None, outcome="archived",
        )  # fmt: skip
        self._apply(batch, inst, Transition(ended, (record,)))

    def _apply(self, batch: _Batch, inst: _Instance, transition: Transition) -> None:
        batch.transitions += 1
        state = inst.state = transition.state
        inst.dirty = True
        person_active = batch.active[state.person_id]
        if state.active:
            person_active[state.journey_id] = state.instance_id
        elif person_active.get(state.journey_id) == state.instance_id:
            del person_active[state.journey_id]
        ws = batch.workspace_id
        for effect in transition.effects:
            match effect:
                case StepRecord():
                    self._record(batch, effect)
                case ScheduleTimer():
                    batch.timers.append(
                        {
                            "workspace_id": ws,
                            "timer_id": effect.timer_id,
                            "instance_id": effect.instance_id,
                            "person_id": effect.person_id,
                            "due_at": effect.due_at,
                        }
                    )
                case SendMessage() | CallWebhook():
                    is_send = isinstance(effect, SendMessage)
                    batch.outbox.append(
                        {
                            "workspace_id": ws,
                            "idempotency_key": effect.idempotency_key,
                            "kind": "send" if is_send else "webhook",
                            "channel": effect.channel if isinstance(effect, SendMessage)
                            else "webhook",
                            "instance_id": effect.instance_id,
                            "journey_id": effect.journey_id,
                            "version": effect.version,
                            "person_id": effect.person_id,
                            "step_id": effect.step_id,
                            "payload": dump(effect),
                            "status": "pending",
                            "due_at": batch.now,
                            "locked_until": None,
                            "attempts": 0,
                            "outcome": None,
                            "created_at": batch.now,
                            "done_at": None,
                        }
                    )  # fmt: skip
                case UpdateProfile():
                    profile = batch.profiles.setdefault(effect.person_id, _Profile({}))
                    profile.traits.update(effect.set)
                    profile.updates.update(effect.set)
                    for key in effect.unset:
                        profile.traits.pop(key, None)
                        profile.updates.pop(key, None)
                        profile.unset.add(key)
                    profile.dirty = True
                case _:
                    pass  # CancelTimer: left in place, a no-op when it fires (module docstring)

    @staticmethod
    def _record(batch: _Batch, r: StepRecord) -> None:
        batch.records.append(record_row(batch.workspace_id, r))

    # -- committing -----------------------------------------------------------------------------

    def _flush(self, conn: Connection, batch: _Batch) -> int:
        """Write the batch's changes; returns how many outbox rows it left to the deliverer."""
        ws, now = batch.workspace_id, batch.now
        new_rows, changed = [], []
        for instance_id, inst in batch.instances.items():
            if not inst.dirty:
                continue
            s = inst.state
            state_json = dump(s)
            if inst.new:
                new_rows.append(
                    {
                        "workspace_id": ws, "instance_id": instance_id, "journey_id": s.journey_id,
                        "version": s.version, "person_id": s.person_id,
                        "entry_number": inst.entry_number, "status": TEXT[s.status],
                        "state": state_json, "entered_at": s.entered_at, "updated_at": now,
                        "ended_at": s.ended_at,
                    }
                )  # fmt: skip
            else:
                changed.append(
                    {"id": inst.row_id, "status": TEXT[s.status], "state": state_json,
                     "updated_at": now, "ended_at": s.ended_at}
                )  # fmt: skip
        pg = self.postgres
        insert_rows(conn, InstanceRow.__table__, new_rows, postgres=pg)
        update_rows(conn, InstanceRow.__table__, "id", changed, postgres=pg)
        if self.settle is not None and batch.outbox:
            batch.records += self.settle(conn, batch.outbox, now)
        insert_rows(
            conn, TimerRow.__table__, batch.timers, postgres=pg,
            conflict=["workspace_id", "timer_id"],
        )  # fmt: skip
        insert_rows(
            conn, OutboxRow.__table__, batch.outbox, postgres=pg,
            conflict=["workspace_id", "idempotency_key"],
        )  # fmt: skip
        self._flush_profiles(conn, batch)
        return sum(row["status"] == "pending" for row in batch.outbox)

    def _flush_profiles(self, conn: Connection, batch: _Batch) -> None:
        dirty = {p: prof for p, prof in batch.profiles.items() if prof.dirty}
        if not dirty:
            return
        ws, now = batch.workspace_id, batch.now
        # Re-read under a row lock and merge only this batch's changes: the mover updates the
        # same profiles from identify calls.
        query = select(CustomerProfile.person_id, CustomerProfile.traits).where(
            CustomerProfile.workspace_id == ws, CustomerProfile.person_id.in_(sorted(dirty))
        )
        if self.postgres:
            query = query.with_for_update()
        current = {p: dict(t or {}) for p, t in conn.execute(query)}
        for person, profile in dirty.items():
            traits = {**current.get(person, {}), **profile.updates}
            for key in profile.unset:
                traits.pop(key, None)
            if person in current:
                conn.execute(
                    update(CustomerProfile)
                    .where(CustomerProfile.workspace_id == ws, CustomerProfile.person_id == person)
                    .values(traits=traits)
                )
            else:
                conn.execute(
                    insert(CustomerProfile).values(
                        workspace_id=ws, person_id=person, consent={}, traits=traits,
                        first_seen=now, last_seen=now,
                    )
                )  # fmt: skip
