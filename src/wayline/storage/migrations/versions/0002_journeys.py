"""The durable journey runtime: journeys, versions, instances, inputs, timers, outbox, records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Written out rather than imported from models: a migration is a frozen record of a change.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_ACTIVE = sa.text("status = 'active'")
_PENDING = sa.text("status = 'pending'")


def _id() -> sa.Column[int]:
    return sa.Column("id", _BIG_ID, autoincrement=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("draft", sa.Text(), nullable=True),
        sa.Column("draft_fingerprint", sa.String(64), nullable=True),
        sa.Column("live_version", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "journey_id", name="pk_journeys"),
    )
    op.create_table(
        "journey_versions",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("published_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "journey_id", "version", name="pk_journey_versions"
        ),
    )
    op.create_table(
        "journey_instances",
        _id(),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("instance_id", sa.String(500), nullable=False),
        sa.Column("journey_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("entry_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("entered_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_journey_instances"),
        sa.UniqueConstraint(
            "workspace_id", "instance_id", name="uq_journey_instances_workspace_id_instance_id"
        ),
    )
    op.create_index(
        "uq_journey_instances_active",
        "journey_instances",
        ["workspace_id", "journey_id", "person_id"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_index(
        "ix_journey_instances_ledger",
        "journey_instances",
        ["workspace_id", "journey_id", "person_id"],
    )
    op.create_index(
        "ix_journey_instances_person_active",
        "journey_instances",
        ["workspace_id", "person_id"],
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_table(
        "journey_inputs",
        _id(),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journey_inputs"),
    )
    op.create_index(
        "ix_journey_inputs_person", "journey_inputs", ["workspace_id", "person_id", "id"]
    )
    op.create_table(
        "journey_timers",
        _id(),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("timer_id", sa.String(600), nullable=False),
        sa.Column("instance_id", sa.String(500), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journey_timers"),
        sa.UniqueConstraint(
            "workspace_id", "timer_id", name="uq_journey_timers_workspace_id_timer_id"
        ),
    )
    op.create_index("ix_journey_timers_due_at", "journey_timers", ["due_at"])
    op.create_table(
        "journey_outbox",
        _id(),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(600), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("instance_id", sa.String(500), nullable=False),
        sa.Column("journey_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("locked_until", _TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("done_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_journey_outbox"),
        sa.UniqueConstraint(
            "workspace_id",
            "idempotency_key",
            name="uq_journey_outbox_workspace_id_idempotency_key",
        ),
    )
    op.create_index(
        "ix_journey_outbox_pending",
        "journey_outbox",
        ["due_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.create_index(
        "ix_journey_outbox_person", "journey_outbox", ["workspace_id", "person_id", "done_at"]
    )
    op.create_table(
        "journey_step_records",
        _id(),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(500), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=True),
        sa.Column("step_type", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.Column("branch", sa.String(200), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journey_step_records"),
    )
    op.create_index(
        "ix_journey_step_records_journey", "journey_step_records", ["workspace_id", "journey_id"]
    )
    op.create_table(
        "journey_messages",
        _id(),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(600), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("to_address", sa.String(600), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journey_messages"),
        sa.UniqueConstraint(
            "workspace_id",
            "idempotency_key",
            name="uq_journey_messages_workspace_id_idempotency_key",
        ),
    )


def downgrade() -> None:
    op.drop_table("journey_messages")
    op.drop_index("ix_journey_step_records_journey", table_name="journey_step_records")
    op.drop_table("journey_step_records")
    op.drop_index("ix_journey_outbox_person", table_name="journey_outbox")
    op.drop_index("ix_journey_outbox_pending", table_name="journey_outbox")
    op.drop_table("journey_outbox")
    op.drop_index("ix_journey_timers_due_at", table_name="journey_timers")
    op.drop_table("journey_timers")
    op.drop_index("ix_journey_inputs_person", table_name="journey_inputs")
    op.drop_table("journey_inputs")
    op.drop_index("ix_journey_instances_person_active", table_name="journey_instances")
    op.drop_index("ix_journey_instances_ledger", table_name="journey_instances")
    op.drop_index("uq_journey_instances_active", table_name="journey_instances")
    op.drop_table("journey_instances")
    op.drop_table("journey_versions")
    op.drop_table("journeys")
