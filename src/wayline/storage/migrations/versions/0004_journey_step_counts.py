"""Journey step counts: per-step stats read a few counter rows instead of every step record.

The counts of the records already stored are filled in here, in the migration's transaction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_KEY = ("workspace_id", "journey_id", "version", "kind", "step_id", "outcome", "branch")


def upgrade() -> None:
    op.create_table(
        "journey_step_counts",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=False),
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*_KEY, name="pk_journey_step_counts"),
    )
    op.execute(
        "INSERT INTO journey_step_counts "
        "(workspace_id, journey_id, version, kind, step_id, outcome, branch, n) "
        "SELECT workspace_id, journey_id, version, kind, COALESCE(step_id, ''), "
        "COALESCE(outcome, ''), COALESCE(branch, ''), count(*) FROM journey_step_records "
        "GROUP BY workspace_id, journey_id, version, kind, COALESCE(step_id, ''), "
        "COALESCE(outcome, ''), COALESCE(branch, '')"
    )


def downgrade() -> None:
    op.drop_table("journey_step_counts")
