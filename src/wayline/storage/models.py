"""The operational store's tables, as SQLAlchemy 2 typed models.

The operational store (SQLite in the data folder, or PostgreSQL) holds what many processes write
and what must be durable the moment it is acknowledged:

- ``workspaces``: one per store (shop). The default one has the id ``"default"``.
- ``write_keys``: public keys for the tracking API, each naming its workspace; a key is revoked
  by setting ``revoked_at`` rather than deleting the row, so an old key is recognisable as revoked.
- ``inbox_requests``: every tracking request acknowledged, one row per request (a batch of 100
  events is one row, one insert), its messages as one JSON array. The mover reads them in order
  and clears the payload once moved; the row stays, counting the messages it held.
- ``inbox_message_ids``: the ``(workspace_id, message_id)`` of every event moved (or queued for a
  live journey), with the request that holds the copy kept: a re-sent event lands once because
  the mover keeps only the first copy of an id (see :mod:`wayline.storage.mover`).
- ``customer_profiles``: one per (workspace, person): contact fields, consent per channel and the
  latest traits, kept current from ``identify`` calls.

Every change to these tables is an Alembic migration (``wayline/storage/migrations``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Constraint names are fixed so migrations can refer to them on every dialect.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: An auto-incrementing 64-bit key; on SQLite an INTEGER PRIMARY KEY (the rowid, which is 64-bit).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect.

    SQLite has no time zone type and hands back naive datetimes; they are UTC by construction
    (only aware values are accepted on the way in), so the zone is put back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Wayline stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        # SQLite keeps what it is given as text: store naive UTC so comparisons are lexical-safe.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WriteKey(Base):
    __tablename__ = "write_keys"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class InboxRequest(Base):
    """An acknowledged tracking request, waiting to be moved (``moved_at`` is null) or moved."""

    __tablename__ = "inbox_requests"
    __table_args__ = (
        # The mover's queue: only rows not yet moved are indexed, so the index stays small
        # however many requests were ever received.
        Index(
            "ix_inbox_requests_pending",
            "id",
            sqlite_where=text("moved_at IS NULL"),
            postgresql_where=text("moved_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    message_count: Mapped[int] = mapped_column(Integer())
    payload: Mapped[bytes | None] = mapped_column(LargeBinary())
    """The messages as one JSON array (as received, batch context merged, each ``messageId``
    once); null once moved, unless a message could not be moved (kept to be replayed)."""
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class InboxMessageId(Base):
    """An event id taken: the copy in request ``inbox_id`` is the one stored."""

    __tablename__ = "inbox_message_ids"

    workspace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    inbox_id: Mapped[int] = mapped_column(BigInteger())


class CustomerProfile(Base):
    __tablename__ = "customer_profiles"
    __table_args__ = (
        UniqueConstraint("workspace_id", "person_id"),
        # The customer list, most recently seen first (migration 0005).
        Index("ix_customer_profiles_last_seen", "workspace_id", "last_seen", "person_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    consent: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    """Consent per channel, e.g. ``{"email": true, "whatsapp": false}``; absent = unknown."""
    traits: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
