"""The durable journey runtime's tables (migration ``0002_journeys``).

    journeys              one per (workspace, journey id): its status and current draft
    journey_versions      immutable published versions (the document as JSON, its fingerprint)
    journey_instances     one customer's run through one version; state as JSON; at most one
                          *active* instance per (workspace, journey, person) — a partial unique
                          index says so on both dialects
    journey_inputs        the queue of tracked events the runtime has not yet applied
    journey_timers        due timers (one row per timer id; deleted when fired)
    journey_outbox        effects to deliver (sends, webhooks), keyed by idempotency key
    journey_step_records  the history: who, which version, which step, when, what came of it
    journey_step_counts   the same records counted per (journey, version, kind, step, outcome,
                          branch) — migration ``0004`` —, so per-step stats read a few rows
    journey_messages      messages the ``log`` channel kept (when no provider is configured),
                          one per idempotency key

They share :class:`wayline.storage.models.Base`'s metadata, so importing this module is enough
for anything that reads ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from wayline.storage.models import Base, BigId, UTCDateTime


class JourneyRow(Base):
    __tablename__ = "journeys"

    workspace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    """``draft`` (never published), ``live``, ``paused`` or ``archived``."""
    draft: Mapped[str | None] = mapped_column(Text())
    """The draft document (JSON text); null when the draft equals the live version."""
    draft_fingerprint: Mapped[str | None] = mapped_column(String(64))
    live_version: Mapped[int | None] = mapped_column(Integer())
    """The version new customers enter; null before the first publish."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JourneyVersionRow(Base):
    __tablename__ = "journey_versions"

    workspace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=False)
    definition: Mapped[str] = mapped_column(Text())
    fingerprint: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InstanceRow(Base):
    __tablename__ = "journey_instances"
    __table_args__ = (
        UniqueConstraint("workspace_id", "instance_id"),
        Index(
            "uq_journey_instances_active",
            "workspace_id",
            "journey_id",
            "person_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_journey_instances_ledger", "workspace_id", "journey_id", "person_id"),
        Index(
            "ix_journey_instances_person_active",
            "workspace_id",
            "person_id",
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str] = mapped_column(String(500))
    journey_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer())
    person_id: Mapped[str] = mapped_column(String(200))
    entry_number: Mapped[int] = mapped_column(Integer())
    status: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(Text())
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InputRow(Base):
    __tablename__ = "journey_inputs"
    __table_args__ = (Index("ix_journey_inputs_person", "workspace_id", "person_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[str] = mapped_column(Text())
    """The tracked message as received (Segment JSON)."""


class TimerRow(Base):
    __tablename__ = "journey_timers"
    __table_args__ = (
        UniqueConstraint("workspace_id", "timer_id"),
        Index("ix_journey_timers_due_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    timer_id: Mapped[str] = mapped_column(String(600))
    instance_id: Mapped[str] = mapped_column(String(500))
    person_id: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    __tablename__ = "journey_outbox"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index(
            "ix_journey_outbox_pending",
            "due_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_journey_outbox_person", "workspace_id", "person_id", "done_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(600))
    kind: Mapped[str] = mapped_column(String(16))
    """``send`` or ``webhook``."""
    channel: Mapped[str] = mapped_column(String(32))
    instance_id: Mapped[str] = mapped_column(String(500))
    journey_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer())
    person_id: Mapped[str] = mapped_column(String(200))
    step_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text())
    status: Mapped[str] = mapped_column(String(16))
    """``pending``, ``sent``, ``skipped`` or ``failed``."""
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    outcome: Mapped[str | None] = mapped_column(String(200))
    """Why it was skipped / failed, or the provider's message id once sent."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StepRecordRow(Base):
    __tablename__ = "journey_step_records"
    # A journey's records (stats, splits) by the prefix; a message's history by instance.
    __table_args__ = (
        Index("ix_journey_step_records_instance", "workspace_id", "journey_id", "instance_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    journey_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer())
    instance_id: Mapped[str] = mapped_column(String(500))
    person_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    step_id: Mapped[str | None] = mapped_column(String(200))
    step_type: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(200))
    branch: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class StepCountRow(Base):
    """How many step records of one kind a journey version has per step, outcome and branch.

    Kept in the transaction that writes the records (one upsert per batch), so it always
    equals counting ``journey_step_records``. Absent values are stored as ``''``: a primary
    key cannot hold NULLs, and step ids, outcomes and branch names are never empty.
    """

    __tablename__ = "journey_step_counts"

    workspace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(200), primary_key=True)
    branch: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger())


class MessageLogRow(Base):
    __tablename__ = "journey_messages"
    __table_args__ = (UniqueConstraint("workspace_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(600))
    message_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[str] = mapped_column(String(200))
    to_address: Mapped[str] = mapped_column(String(600))
    content: Mapped[str] = mapped_column(Text())
    """The rendered message as JSON."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
