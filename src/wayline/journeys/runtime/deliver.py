"""The outbox deliverer: send-time policies, rendering, one channel call per idempotency key.

The advancer commits sends and webhooks to ``journey_outbox`` with the transition that decided
them. The deliverer takes them from there, a batch at a time:

1. **claim** (one short transaction): pending rows that are due and not leased, oldest first —
   ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers share the outbox — and lease them
   (``locked_until``) so no one else takes them while they are being sent. Read in the same
   transaction: the customers' profiles and their recent sends (for the frequency cap).
2. **decide** with the send-time policy (:mod:`wayline.journeys.policies`): consent per channel
   and unsubscribes from the ``customer_profiles`` row, the frequency cap over the customer's
   sends by *any* journey, quiet hours in the customer's time zone. Skips and deferrals are
   recorded with their reason; a deferred send becomes due again at the end of the quiet hours
   and is evaluated afresh then (a cap reached overnight still holds).
3. **send**: render the template (:func:`wayline.channels.compose`) and call the channel with the
   row's idempotency key — no database transaction is open during the call.
4. **mark** (one transaction): sent / skipped / failed for good / retry later with backoff, and
   the step records (``sent``, ``send_skipped``, ``send_deferred``).

Messages the operational store keeps itself (the ``log`` channel) skip 3: with no renderer
configured they are decided and written in the advancer's transaction that queued them
(:meth:`Deliverer.settle`: the outbox row is inserted already marked, never read back), or,
when they come due later (deferred by quiet hours), in the claiming transaction (no lease, one
commit); with a renderer they take the leased way, so no template is rendered while SQLite's
write lock is held.

Exactly once. A crash between 3 and 4 leaves the row pending; when its lease runs out another
worker sends it again *with the same key*. Whether the customer then gets one message depends on
the provider honouring the key: the ``log`` channel writes in the marking transaction (exactly
once by construction); email carries a ``Message-ID`` derived from the key, which relays and
mail clients use to drop the duplicate; webhooks carry an ``Idempotency-Key`` header. The
WhatsApp Cloud API and Twilio take no idempotency key: for them the window is kept to the
provider call plus one commit (milliseconds) — no transaction is open during the call and the
row is marked right after — and only a process that dies in exactly that window causes a second
message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, bindparam, or_, select, update

from wayline.channels.base import (
    Channel,
    ChannelKind,
    OutboundMessage,
    Outcome,
    SendResult,
    WebhookContent,
)
from wayline.errors import WaylineError
from wayline.journeys.engine import RecordKind, Status
from wayline.journeys.entry import JourneyStatus
from wayline.journeys.policies import (
    DEFAULT_POLICY,
    Recipient,
    SendContext,
    SendPolicy,
    Verdict,
    cap_window,
)
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
from wayline.journeys.runtime.channels import ChannelRegistry, LogChannel, content_json
from wayline.journeys.runtime.records import TEXT, Row, write_records
from wayline.storage.db import Database
from wayline.storage.journey_models import (
    InstanceRow,
    MessageLogRow,
    OutboxRow,
)
from wayline.storage.models import CustomerProfile

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Profile:
    """What the deliverer knows of a customer: contact fields, consent, traits."""

    person_id: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    consent: Mapping[str, Any] | None = None
    traits: Mapping[str, Any] | None = None

    def address(self, channel: str) -> str | None:
        if channel == "email":
            return self.email
        if channel in ("sms", "whatsapp"):
            return self.phone
        return None

    def policy_traits(self) -> dict[str, Any]:
        """Traits as :meth:`Recipient.from_traits` reads them, the profile's columns merged in:
        consent recorded by the tracking API and the time zone column win over traits."""
        traits = dict(self.traits or {})
        consents = dict(traits.get("consents") or {})
        consents.update({str(k): bool(v) for k, v in (self.consent or {}).items()})
        traits["consents"] = consents
        if self.timezone:
            traits["timezone"] = self.timezone
        return traits

    def as_customer(self) -> dict[str, Any]:
        """The ``customer`` a template sees."""
        return {
            **(self.traits or {}),
            "id": self.person_id,
            "email": self.email,
            "phone": self.phone,
            "first_name": self.first_name,
            "last_name": self.last_name,
        }


class Renderer(Protocol):
    """Turns an outbox send into a rendered message (raises a :class:`WaylineError` when it
    cannot: unknown template, missing variable…)."""

    def render(
        self, send: Mapping[str, Any], *, workspace_id: str, profile: Profile, to: str,
        now: datetime,
    ) -> OutboundMessage: ...  # fmt: skip


_Profiles = dict[tuple[str, str], Profile]
_KINDS = {k.value: k for k in ChannelKind}  # a dict lookup, not EnumType.__call__ per send
_Recent = dict[tuple[str, str], list[datetime]]


@dataclass(slots=True)
class _Claimed:
    id: int
    workspace_id: str
    key: str
    kind: str
    channel: str
    instance_id: str
    journey_id: str
    version: int
    person_id: str
    step_id: str
    payload: dict[str, Any]
    attempts: int
    late: bool
    """Due after it was created (deferred or retried): check the instance is still running."""


@dataclass
class _Result:
    row: _Claimed
    status: str  # pending / sent / skipped / failed
    outcome: str | None
    record: RecordKind | None
    due_at: datetime | None = None
    attempts: int | None = None
    message: OutboundMessage | None = None
    in_store: bool = False


class _Statements:
    """The statements every batch runs, built once (SQLAlchemy would build, key and look each
    up again per batch; see :class:`wayline.journeys.runtime.bulk.Later`)."""

    def __init__(self, postgres: bool) -> None:
        o = OutboxRow
        due = (
            o.status == inline("pending"),  # the partial index of pending rows
            o.due_at <= bindparam("now", type_=o.due_at.type),
            or_(o.locked_until.is_(None), o.locked_until <= bindparam("now", type_=o.due_at.type)),
        )
        # Only the columns a send needs, ``late`` computed by the database: reading whole rows
        # converted five datetimes per row for one comparison.
        columns = (
            o.id, o.workspace_id, o.idempotency_key, o.kind, o.channel, o.instance_id,
            o.journey_id, o.version, o.person_id, o.step_id, o.payload, o.attempts,
            (o.due_at > o.created_at).label("late"),
        )  # fmt: skip
        if not postgres:
            # SQLite: the write transaction (BEGIN IMMEDIATE) keeps other workers out, so one
            # statement walks the pending index in due order (``{"now", "limit"}``).
            self.due: Any = (
                select(*columns).where(*due).order_by(o.due_at).limit(bindparam("limit"))
            )
        else:
            # PostgreSQL, two steps: lock the due rows' ids, oldest first (``due``), then read
            # the rows (``rows``, ``{"keys"}``). It sorts every pending row before it locks
            # (``LockRows`` sits between the sort and the limit), and without statistics it
            # does so rather than walk the due-date index: sorting the whole rows, payloads
            # included, spilled to disk and took 25 ms per batch with 14,000 pending; sorting
            # ids and dates stays in memory (measured).
            self.due = (
                select(o.id)
                .where(*due)
                .order_by(o.due_at)
                .limit(bindparam("limit"))
                .with_for_update(skip_locked=True)
            )
        self.rows = probe(select(*columns), o.id, Later("keys", integer=True), postgres)
        p = CustomerProfile
        # The addresses of a batch's customers (``{"ws", "keys"}``).
        addresses = select(p.person_id, p.email, p.phone).where(p.workspace_id == bindparam("ws"))
        self.addresses = probe(addresses, p.person_id, Later("keys"), postgres)


class Deliverer:
    """Delivers the outbox (see the module docstring).

    Args:
        policy: the send-time rules; :data:`wayline.journeys.policies.DEFAULT_POLICY` by default.
        policy_for: a workspace's own rules (its dashboard settings), when it has them;
            ``policy`` for the others.
        renderer: renders sends; without one, a message carries the template name and
            variables only (enough for the log channel and tests).
        lease: how long a claimed row is left to its worker before another may retry it.
        max_attempts: retryable failures after which a send fails for good.
    """

    def __init__(
        self,
        db: Database,
        catalog: JourneyCatalog,
        channels: ChannelRegistry,
        *,
        policy: SendPolicy = DEFAULT_POLICY,
        policy_for: Callable[[str], SendPolicy | None] | None = None,
        renderer: Renderer | None = None,
        clock: Callable[[], datetime] = _utcnow,
        batch_size: int = 500,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 8,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.channels = channels
        self.policy = policy
        self.policy_for = policy_for
        self.renderer = renderer
        self.clock = clock
        self.batch_size = batch_size
        self.lease = lease
        self.max_attempts = max_attempts
        self.postgres = db.dialect == "postgresql"
        self._statements = _Statements(self.postgres)
        self._channels: dict[tuple[str, str], Channel | LogChannel] = {}
        self._policies: dict[str, SendPolicy] = {}

    def _policy(self, workspace_id: str) -> SendPolicy:
        found = self._policies.get(workspace_id)
        if found is None:
            own = self.policy_for(workspace_id) if self.policy_for is not None else None
            found = self._policies[workspace_id] = own if own is not None else self.policy
        return found

    def _channel(self, name: str, workspace_id: str) -> Channel | LogChannel:
        found = self._channels.get((name, workspace_id))
        if found is None:
            found = self._channels[(name, workspace_id)] = self.channels.get(name, workspace_id)
        return found

    def deliver(self) -> int:
        """Deliver one batch; returns how many outbox rows it settled or rescheduled."""
        now = self.clock()
        # Channels and policies looked up once per workspace and batch, not per message (a
        # workspace's own provider or rules are a cached lookup, but 500 of them add up).
        self._channels.clear()
        self._policies.clear()
        with self.db.write() as conn:
            claimed, profiles, recent = self._claim(conn, now)
            if not claimed:
                return 0
            # Messages the store keeps itself (the log channel) are "sent" by the row the
            # marking writes: with nothing to render either, the whole send is this one
            # transaction — no lease, no second commit. A renderer can take milliseconds per
            # message (CSS inlining), too long to hold SQLite's write lock: then they go the
            # leased way like any provider's.
            here: list[_Claimed] = []
            leased: list[_Claimed] = []
            for c in claimed:
                (here if self._in_transaction(c) else leased).append(c)
            if here:
                self._mark(conn, [self._decide(c, profiles, recent, now) for c in here], now)
            if leased:
                self._lease(conn, leased, now)
        if leased:
            results = [self._decide(row, profiles, recent, now) for row in leased]
            to_send = [r for r in results if r.message is not None and not r.in_store]
            if to_send:
                asyncio.run(self._send_all(to_send))
            with self.db.write() as conn:
                self._mark(conn, results, self.clock())
        return len(claimed)

    def _in_transaction(self, row: _Claimed) -> bool:
        return self.renderer is None and bool(
            getattr(self._channel(row.channel, row.workspace_id), "in_store", False)
        )

    # -- 1. claim -------------------------------------------------------------------------------

    def _claim(self, conn: Connection, now: datetime) -> tuple[list[_Claimed], _Profiles, _Recent]:
        rows = self._due_rows(conn, now)
        if not rows:
            return [], {}, {}
        # Rows unpacked as tuples, in the select's column order: reading thirteen attributes of
        # each SQLAlchemy row by name was most of this loop's 0.5 s per 40,000 sends.
        claimed = [
            _Claimed(
                id_, ws, key, kind, channel, instance_id, journey_id, version, person_id, step_id,
                orjson.loads(payload), attempts, bool(late),
            )
            for (id_, ws, key, kind, channel, instance_id, journey_id, version, person_id,
                 step_id, payload, attempts, late) in rows
        ]  # fmt: skip
        by_ws: dict[str, set[str]] = defaultdict(set)
        for c in claimed:
            by_ws[c.workspace_id].add(c.person_id)
        profiles = self._profiles(conn, by_ws)
        recent = self._recent_sends(conn, by_ws, now)
        ended = self._ended(conn, [c for c in claimed if c.late])
        for c in claimed:
            if c.instance_id in ended:
                c.payload["_ended"] = True
        return claimed, profiles, recent

    def _due_rows(self, conn: Connection, now: datetime) -> Sequence[Any]:
        """The due, unleased pending rows of a batch, oldest first (:class:`_Statements`)."""
        st = self._statements
        if not self.postgres:
            return conn.execute(st.due, {"now": now, "limit": self.batch_size}).all()
        ids = list(conn.scalars(st.due, {"now": now, "limit": self.batch_size}).all())
        if not ids:
            return []
        position = {id_: i for i, id_ in enumerate(ids)}
        return sorted(  # oldest first, as claimed
            conn.execute(st.rows, {"keys": keys_json(ids)}).all(),
            key=lambda r: position[r[0]],
        )

    def _lease(self, conn: Connection, rows: list[_Claimed], now: datetime) -> None:
        """Keep ``rows`` from other workers while they are sent outside a transaction."""
        conn.execute(
            update(OutboxRow)
            .where(member_of(OutboxRow.id, [r.id for r in rows], self.postgres))
            .values(locked_until=now + self.lease)
        )

    def _profiles(
        self, conn: Connection, by_ws: Mapping[str, set[str]]
    ) -> dict[tuple[str, str], Profile]:
        out: dict[tuple[str, str], Profile] = {}
        p = CustomerProfile
        for ws, people in by_ws.items():
            keys = sorted(people)
            if self.renderer is None and not self._policy(ws).rules:
                # Nothing will read consent, traits or names (no rules to check, no template
                # to fill): only the addresses. Decoding two JSON columns and building full
                # profiles was 1.2 s of a 17 s profile of 40,000 transitions.
                addresses = self._statements.addresses
                for pid, email, phone in conn.execute(
                    addresses, {"ws": ws, "keys": keys_json(keys)}
                ).all():
                    out[(ws, pid)] = Profile(pid, email, phone)
                continue
            full = select(
                p.person_id, p.email, p.phone, p.first_name, p.last_name, p.timezone,
                json_text(p.consent), json_text(p.traits),
            ).where(p.workspace_id == ws)  # fmt: skip
            for r in conn.execute(probe(full, p.person_id, keys, self.postgres)).all():
                out[(ws, r.person_id)] = Profile(
                    r.person_id, r.email, r.phone, r.first_name, r.last_name, r.timezone,
                    json_value(r.consent), json_value(r.traits),
                )  # fmt: skip
        return out

    def _recent_sends(
        self, conn: Connection, by_ws: Mapping[str, set[str]], now: datetime
    ) -> dict[tuple[str, str], list[datetime]]:
        out: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        for ws, people in by_ws.items():
            window = cap_window(self._policy(ws))
            if not window:
                continue
            sent = select(OutboxRow.person_id, OutboxRow.done_at).where(
                OutboxRow.workspace_id == ws,
                OutboxRow.done_at > now - window,
                OutboxRow.status == "sent",
                OutboxRow.kind == "send",
            )
            for person, at in conn.execute(
                probe(sent, OutboxRow.person_id, sorted(people), self.postgres)
            ).all():
                if at is not None:
                    out[(ws, person)].append(at)
        return out

    def _ended(self, conn: Connection, late: list[_Claimed]) -> set[str]:
        if not late:
            return set()
        ended: set[str] = set()
        by_ws: dict[str, list[str]] = defaultdict(list)
        for c in late:
            by_ws[c.workspace_id].append(c.instance_id)
        for ws, ids in by_ws.items():
            over = select(InstanceRow.instance_id).where(
                InstanceRow.workspace_id == ws,
                # Completed (the path ended) keeps its last deferred message; a conversion or
                # an exit makes it pointless.
                InstanceRow.status.in_([Status.CONVERTED.value, Status.EXITED.value]),
            )
            ended.update(
                conn.scalars(probe(over, InstanceRow.instance_id, ids, self.postgres)).all()
            )
        return ended

    # -- 2. decide ------------------------------------------------------------------------------

    def _decide(
        self,
        row: _Claimed,
        profiles: Mapping[tuple[str, str], Profile],
        recent: dict[tuple[str, str], list[datetime]],
        now: datetime,
    ) -> _Result:
        if self.catalog.status(row.workspace_id, row.journey_id) is JourneyStatus.ARCHIVED:
            return _Result(row, "skipped", "journey_archived", RecordKind.SEND_SKIPPED)
        if row.payload.get("_ended"):
            # Deferred or retried past the end of the instance (it converted overnight).
            return _Result(row, "skipped", "journey_ended", RecordKind.SEND_SKIPPED)
        # Not ``get(key, Profile(…))``: that builds a frozen dataclass per send, found or not.
        profile = profiles.get((row.workspace_id, row.person_id)) or Profile(row.person_id)
        if row.kind == "webhook":
            return self._prepare(row, profile, str(row.payload.get("url", "")), now)
        sends = recent[(row.workspace_id, row.person_id)]
        policy = self._policy(row.workspace_id)
        if policy.rules:  # without rules there is nothing to ask the customer's profile
            decision = policy.evaluate(
                SendContext(row.channel, self._recipient(row, profile, sends), now)
            )
            if decision.verdict is Verdict.SKIP:
                return _Result(row, "skipped", decision.reason, RecordKind.SEND_SKIPPED)
            if decision.verdict is Verdict.DEFER:
                return _Result(
                    row, "pending", decision.reason, RecordKind.SEND_DEFERRED,
                    due_at=decision.send_at,
                )  # fmt: skip
        to = profile.address(row.channel)
        if not to:
            return _Result(row, "skipped", "no_address", RecordKind.SEND_SKIPPED)
        sends.append(now)  # the next send to this customer in this batch counts this one
        return self._prepare(row, profile, to, now)

    def _recipient(self, row: _Claimed, profile: Profile, sends: list[datetime]) -> Recipient:
        journey_tz = "UTC"
        with contextlib.suppress(WaylineError):
            journey = self.catalog.version(row.workspace_id, row.journey_id, row.version)
            journey_tz = journey.timezone
        return Recipient.from_traits(
            row.person_id,
            profile.policy_traits(),
            recent_sends=sends,
            default_timezone=journey_tz,
        )

    def _prepare(self, row: _Claimed, profile: Profile, to: str, now: datetime) -> _Result:
        channel = self._channel(row.channel, row.workspace_id)
        try:
            message = self._render(row, profile, to, now)
        except WaylineError as exc:
            return _Result(row, "failed", f"render: {exc}"[:200], RecordKind.SEND_SKIPPED)
        in_store = bool(getattr(channel, "in_store", False))
        return _Result(row, "sent", None, RecordKind.SENT, message=message, in_store=in_store)

    def _render(self, row: _Claimed, profile: Profile, to: str, now: datetime) -> OutboundMessage:
        p = row.payload
        if row.kind == "webhook":
            body = {**(p.get("body") or {}), "trigger": p.get("trigger"),
                    "person_id": row.person_id, "journey_id": row.journey_id}  # fmt: skip
            return OutboundMessage(
                message_id=row.key, workspace_id=row.workspace_id, customer_id=row.person_id,
                channel=ChannelKind.WEBHOOK, to=to, content=WebhookContent(body),
                journey_id=row.journey_id, step_id=row.step_id,
                metadata={"method": str(p.get("method", "POST"))},
            )  # fmt: skip
        if self.renderer is not None:
            return self.renderer.render(
                p, workspace_id=row.workspace_id, profile=profile, to=to, now=now
            )
        return OutboundMessage(
            message_id=str(p.get("message_id", row.key)), workspace_id=row.workspace_id,
            customer_id=row.person_id, channel=_KINDS[row.channel], to=to,
            content=WebhookContent({"template": p.get("template"),
                                    "variables": p.get("variables") or {}}),
            journey_id=row.journey_id, step_id=row.step_id,
        )  # fmt: skip

    # -- 3. send --------------------------------------------------------------------------------

    async def _send_all(self, results: list[_Result]) -> None:
        async def one(result: _Result) -> None:
            assert result.message is not None
            channel = self._channel(result.row.channel, result.row.workspace_id)
            try:
                sent = await channel.send(result.message, idempotency_key=result.row.key)
            except Exception as exc:  # a channel bug must not lose the batch's bookkeeping
                log.exception("channel %s raised for %s", result.row.channel, result.row.key)
                sent = SendResult(Outcome.RETRYABLE, result.row.key, detail=str(exc)[:200])
            self._classify(result, sent)

        await asyncio.gather(*(one(r) for r in results))

    def _classify(self, result: _Result, sent: SendResult) -> None:
        attempts = result.row.attempts + 1
        result.attempts = attempts
        if sent.outcome is Outcome.DELIVERED:
            result.outcome = sent.provider_message_id
            return
        result.message = None
        if sent.outcome is Outcome.PERMANENT or attempts >= self.max_attempts:
            result.status, result.record = "failed", RecordKind.SEND_SKIPPED
            result.outcome = f"failed: {sent.error_code or sent.detail or sent.outcome}"[:200]
            return
        backoff = sent.retry_after or timedelta(seconds=min(30 * 2 ** (attempts - 1), 6 * 3600))
        result.status, result.record, result.outcome = "pending", None, "retry"
        result.due_at = self.clock() + backoff

    # -- 4. mark --------------------------------------------------------------------------------

    def _mark(self, conn: Connection, results: list[_Result], now: datetime) -> None:
        marks, logged, records = self._outcomes(results, now)
        pg = self.postgres
        update_rows(conn, OutboxRow.__table__, "id", marks, postgres=pg)
        insert_rows(
            conn, MessageLogRow.__table__, logged, postgres=pg,
            conflict=["workspace_id", "idempotency_key"],
        )  # fmt: skip
        write_records(conn, records, postgres=pg)

    @staticmethod
    def _outcomes(
        results: list[_Result], now: datetime
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Row]]:
        """What marking ``results`` writes: the outbox rows' new columns (with their ``id``),
        the messages the store keeps (``journey_messages``) and the step records."""
        marks, logged = [], []
        records: list[Row] = []
        for r in results:
            row = r.row
            done = r.status in ("sent", "skipped", "failed")
            marks.append(
                {
                    "id": row.id,
                    "status": r.status,
                    "outcome": r.outcome,
                    "due_at": r.due_at or now,
                    "attempts": r.attempts if r.attempts is not None else row.attempts,
                    "locked_until": None,
                    "done_at": now if done else None,
                }
            )
            if r.in_store and r.message is not None:
                logged.append(
                    {
                        "workspace_id": row.workspace_id,
                        "idempotency_key": row.key,
                        "message_id": r.message.message_id,
                        "channel": row.channel,
                        "person_id": row.person_id,
                        "to_address": r.message.to,
                        "content": content_json(r.message),
                        "created_at": now,
                    }
                )
            if r.record is not None and row.kind == "send":
                outcome = r.outcome if r.record is not RecordKind.SENT else row.channel
                records.append(
                    (row.workspace_id, row.journey_id, row.version, row.instance_id,
                     row.person_id, TEXT[r.record], row.step_id, "send", outcome, row.channel,
                     now)
                )  # fmt: skip
        return marks, logged, records

    # -- in the advancer's transaction ----------------------------------------------------------

    def settle(self, conn: Connection, rows: Sequence[dict[str, Any]], now: datetime) -> list[Row]:
        """Deliver, in the transaction that decided them, the new outbox rows (as the advancer
        is about to insert them) whose message the store keeps itself and needs no rendering.

        Such a send is nothing but rows of this database (the ``log`` channel's message, the
        row marked sent, a ``sent`` record), so it can be written with the transition: one
        transaction instead of two, no outbox row read back, decoded and updated (the
        deliverer's claim, update and commit were about a tenth of the runtime's samples on
        SQLite with the log channel, measured with py-spy). The send-time policy
        is applied as the deliverer applies it, at this moment. ``rows`` are updated in place
        (status, outcome, ``done_at``; a deferred send stays pending, due when the policy
        says); the messages are written here; the step records are returned for the
        advancer's own write. Rows of other channels, and all of them when a renderer is
        configured (rendering can take milliseconds per message: not under SQLite's write
        lock), are left to :meth:`deliver`.
        """
        if self.renderer is not None or not rows:
            return []
        self._channels.clear()
        self._policies.clear()
        here: list[tuple[dict[str, Any], _Claimed]] = []
        for row in rows:
            if row["kind"] != "send" or not getattr(
                self._channel(row["channel"], row["workspace_id"]), "in_store", False
            ):
                continue
            claimed = _Claimed(
                0, row["workspace_id"], row["idempotency_key"], "send", row["channel"],
                row["instance_id"], row["journey_id"], row["version"], row["person_id"],
                row["step_id"], orjson.loads(row["payload"]), 0, False,
            )  # fmt: skip
            here.append((row, claimed))
        if not here:
            return []
        by_ws: dict[str, set[str]] = defaultdict(set)
        for _, c in here:
            by_ws[c.workspace_id].add(c.person_id)
        profiles = self._profiles(conn, by_ws)
        recent = self._recent_sends(conn, by_ws, now)
        results = [self._decide(c, profiles, recent, now) for _, c in here]
        marks, logged, records = self._outcomes(results, now)
        for (row, _), mark in zip(here, marks, strict=True):
            del mark["id"]
            row.update(mark)
        insert_rows(
            conn, MessageLogRow.__table__, logged, postgres=self.postgres,
            conflict=["workspace_id", "idempotency_key"],
        )  # fmt: skip
        return records
