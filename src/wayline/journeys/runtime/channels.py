"""Where the runtime's messages go: a registry of channels, the ``log`` channel, a recorder.

The deliverer asks a :class:`ChannelRegistry` for the channel of each message (``email``,
``whatsapp``, ``sms``, ``webhook``). Providers are configured per workspace later (dashboard);
until then every channel not configured is the :class:`LogChannel`: the rendered message is
kept in the ``journey_messages`` table, written in the very transaction that marks the outbox
row sent — exactly once by construction, nothing lost, and the dashboard can show it.

:class:`RecordingChannel` stands in for an external provider that deduplicates on the
idempotency key (as an SMTP relay does on the ``Message-ID`` derived from it): it commits each
call in its own database (``recorded_calls``, every call) and keeps each key once
(``recorded_messages``). The crash tests and the benchmark use it: a worker killed between
calling it and marking the outbox row makes a second *call* with the same key, never a second
*message*; the calls table shows how often that happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from wayline.channels.base import Channel, ChannelKind, OutboundMessage, Outcome, SendResult


def _utcnow() -> datetime:
    return datetime.now(UTC)


def content_json(message: OutboundMessage) -> str:
    """A rendered message as JSON text (what the log channel keeps)."""
    return orjson.dumps(
        {
            "message_id": message.message_id,
            "channel": message.channel.value,
            "to": message.to,
            "content": message.content,  # a dataclass: orjson writes its fields
            "journey_id": message.journey_id,
            "step_id": message.step_id,
            "unsubscribe_url": message.unsubscribe_url,
        },
        default=_plain,
    ).decode()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    return str(value)


class LogChannel:
    """Keeps messages in the operational store instead of sending them (see module docstring).

    The deliverer recognises it (``in_store``) and writes the message itself, in the
    transaction that marks the send done; ``send`` is never called for it.
    """

    in_store = True

    def __init__(self, kind: ChannelKind = ChannelKind.EMAIL) -> None:
        self.kind = kind

    async def send(self, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        raise RuntimeError("the log channel is written by the deliverer, in its transaction")


class ChannelRegistry:
    """Channels by name; any name not configured is the :class:`LogChannel`.

    ``channels`` are the same for every workspace (tests, the benchmark's recorder);
    ``resolve(workspace_id, name)`` finds a workspace's own provider
    (:class:`wayline.journeys.runtime.providers.WorkspaceProviders`), ``None`` when it has none.
    """

    def __init__(
        self,
        channels: Mapping[str, Channel] | None = None,
        *,
        resolve: Callable[[str, str], Channel | None] | None = None,
    ) -> None:
        self._channels = dict(channels or {})
        self._resolve = resolve
        self._log = LogChannel()

    def get(self, name: str, workspace_id: str | None = None) -> Channel | LogChannel:
        fixed = self._channels.get(name)
        if fixed is not None:
            return fixed
        if self._resolve is not None and workspace_id is not None:
            found = self._resolve(workspace_id, name)
            if found is not None:
                return found
        return self._log

    def configured(self) -> list[str]:
        return sorted(self._channels)


_meta = MetaData()
RECORDED_CALLS = Table(
    "recorded_calls",
    _meta,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("idempotency_key", String(600), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
RECORDED_MESSAGES = Table(
    "recorded_messages",
    _meta,
    Column("idempotency_key", String(600), primary_key=True),
    Column("person_id", String(200), nullable=False),
    Column("step_id", String(200), nullable=True),
    Column("to_address", String(600), nullable=False),
    Column("content", Text(), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=OFF")
    cur.close()


def _postgres_async_commit(dbapi_conn: Any, _record: Any) -> None:
    with dbapi_conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
    dbapi_conn.commit()


class RecordingChannel:
    """A provider double that deduplicates on the idempotency key (see module docstring).

    Args:
        url: a SQLAlchemy URL of the database it records into (created if missing); use a
            database or schema of its own, as a real provider would be.
    """

    in_store = False

    def __init__(
        self,
        url: str,
        *,
        kind: ChannelKind = ChannelKind.EMAIL,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.kind = kind
        self.clock = clock
        if url.startswith("sqlite"):
            # Durable against a killed *process* (what the crash tests do): committed pages are
            # in the OS cache; fsync per call would only measure the disk.
            self.engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            # The server's crash is not what is tested: its commits need not wait for the disk.
            self.engine = create_engine(url, pool_size=8, max_overflow=8)
            event.listen(self.engine, "connect", _postgres_async_commit)
        _meta.create_all(self.engine)
        ins = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        self._insert = ins(RECORDED_MESSAGES).on_conflict_do_nothing(
            index_elements=["idempotency_key"]
        )

    async def send(self, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        # In a thread, as a network call would be awaited: the deliverer's calls overlap.
        return await asyncio.to_thread(self._record, message, idempotency_key)

    def _record(self, message: OutboundMessage, idempotency_key: str) -> SendResult:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(insert(RECORDED_CALLS).values(idempotency_key=idempotency_key, at=now))
            conn.execute(
                self._insert.values(
                    idempotency_key=idempotency_key,
                    person_id=message.customer_id,
                    step_id=message.step_id,
                    to_address=message.to,
                    content=content_json(message),
                    at=now,
                )
            )
        return SendResult(Outcome.DELIVERED, idempotency_key, provider_message_id=idempotency_key)

    def counts(self) -> tuple[int, int, int]:
        """(calls, distinct keys called, messages kept)."""
        with self.engine.connect() as conn:
            calls = conn.scalar(select(func.count()).select_from(RECORDED_CALLS)) or 0
            keys = conn.scalar(select(func.count(RECORDED_CALLS.c.idempotency_key.distinct()))) or 0
            kept = conn.scalar(select(func.count()).select_from(RECORDED_MESSAGES)) or 0
        return int(calls), int(keys), int(kept)

    def close(self) -> None:
        self.engine.dispose()
