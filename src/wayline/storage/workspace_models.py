"""The tables behind the REST API and the dashboard (migration ``0003_workspaces``).

    api_keys           secret REST API keys, one workspace each; only a hash of the secret is
                       kept (the key is shown once, when created)
    users              dashboard accounts (argon2 password hashes), one workspace each
    web_sessions       dashboard log-ins: a hash of the cookie's token, its CSRF token, expiry
    channel_settings   per workspace and channel (email, whatsapp, sms): provider credentials,
                       encrypted at rest (see :mod:`wayline.storage.secretbox`)
    workspace_settings per workspace: the sending policy (quiet hours, frequency caps) as JSON
    import_jobs        files uploaded through the API or the dashboard: progress and outcome
    used_tokens        spent one-time tokens (unsubscribe links) until they expire

They share :class:`wayline.storage.models.Base`'s metadata, like the journey tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wayline.storage.models import Base, BigId, UTCDateTime


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """The public half of the key (``wl_sk_<id>_<secret>``): finds the row without a scan."""
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the secret half, hex. The secret is 256 random bits: a fast hash is enough."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Lower-cased; the log-in name."""
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebSessionRow(Base):
    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChannelSettingRow(Base):
    __tablename__ = "channel_settings"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    config_encrypted: Mapped[str] = mapped_column(Text())
    """The provider settings (JSON), encrypted with the data folder's secret key."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkspaceSettingsRow(Base):
    __tablename__ = "workspace_settings"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    sending: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    """Quiet hours and frequency caps, in the shape of :class:`wayline.journeys.policies`."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ImportJobRow(Base):
    __tablename__ = "import_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    format: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    """``queued``, ``waiting`` (for the analytics store's write lock), ``running``, ``done`` or
    ``failed`` (a failed import stored nothing)."""
    bytes_total: Mapped[int] = mapped_column(Integer(), default=0)
    bytes_done: Mapped[int] = mapped_column(Integer(), default=0)
    """How much of the file the importer has read (DuckDB's progress of the reading stage)."""
    stage: Mapped[str | None] = mapped_column(String(64), default=None)
    """What the import is doing now (``reading``, ``loading``, ``linking identities``…)."""
    rows_done: Mapped[int] = mapped_column(Integer(), default=0)
    events_stored: Mapped[int] = mapped_column(Integer(), default=0)
    error: Mapped[str | None] = mapped_column(Text(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class UsedTokenRow(Base):
    __tablename__ = "used_tokens"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
