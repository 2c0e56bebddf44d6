"""The REST API and dashboard: keys, users, sessions, channel and workspace settings, imports,
spent one-time tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Written out rather than imported from models: a migration is a frozen record of a change.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _workspace(table: str) -> sa.Column[str]:
    fk = sa.ForeignKey("workspaces.id", name=f"fk_{table}_workspace_id_workspaces")
    return sa.Column("workspace_id", sa.String(64), fk, nullable=False)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        _workspace("api_keys"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_used_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_workspace_id", "api_keys", ["workspace_id"])
    op.create_table(
        "users",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        _workspace("users"),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_index("ix_users_workspace_id", "users", ["workspace_id"])
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column(
            "user_id",
            _BIG_ID,
            sa.ForeignKey("users.id", name="fk_web_sessions_user_id_users"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "channel_settings",
        _workspace("channel_settings"),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("config_encrypted", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "channel", name="pk_channel_settings"),
    )
    op.create_table(
        "workspace_settings",
        _workspace("workspace_settings"),
        sa.Column("sending", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_workspace_settings"),
    )
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.String(32), nullable=False),
        _workspace("import_jobs"),
        sa.Column("filename", sa.String(500), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bytes_total", sa.Integer(), nullable=False),
        sa.Column("bytes_done", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(64), nullable=True),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("events_stored", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_import_jobs"),
    )
    op.create_index("ix_import_jobs_workspace_id", "import_jobs", ["workspace_id"])
    op.create_table(
        "used_tokens",
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("token_id", name="pk_used_tokens"),
    )


def downgrade() -> None:
    for table in (
        "used_tokens",
        "import_jobs",
        "workspace_settings",
        "channel_settings",
        "web_sessions",
        "users",
        "api_keys",
    ):
        op.drop_table(table)
