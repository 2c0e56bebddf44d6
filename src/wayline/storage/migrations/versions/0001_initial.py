"""The first tables: workspaces, write keys, the event inbox, customer profiles.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Written out rather than imported from models: a migration is a frozen record of a change.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
    )
    op.create_table(
        "write_keys",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_write_keys"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_write_keys_workspace_id_workspaces"
        ),
    )
    op.create_index("ix_write_keys_workspace_id", "write_keys", ["workspace_id"])
    op.create_table(
        "inbox",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("moved_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sa.UniqueConstraint("workspace_id", "message_id", name="uq_inbox_workspace_id_message_id"),
    )
    op.create_index(
        "ix_inbox_pending",
        "inbox",
        ["id"],
        sqlite_where=sa.text("moved_at IS NULL"),
        postgresql_where=sa.text("moved_at IS NULL"),
    )
    op.create_table(
        "customer_profiles",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(64), nullable=True),
        sa.Column("first_name", sa.String(200), nullable=True),
        sa.Column("last_name", sa.String(200), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("consent", sa.JSON(), nullable=False),
        sa.Column("traits", sa.JSON(), nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customer_profiles"),
        sa.UniqueConstraint(
            "workspace_id", "person_id", name="uq_customer_profiles_workspace_id_person_id"
        ),
    )


def downgrade() -> None:
    op.drop_table("customer_profiles")
    op.drop_index("ix_inbox_pending", table_name="inbox")
    op.drop_table("inbox")
    op.drop_index("ix_write_keys_workspace_id", table_name="write_keys")
    op.drop_table("write_keys")
    op.drop_table("workspaces")
