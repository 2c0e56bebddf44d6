"""An index on customer profiles by last seen: the customer list's first page reads the k most
recent profiles of a workspace instead of sorting them all (140,000 at 10 M events: 0.2 s).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_customer_profiles_last_seen",
        "customer_profiles",
        ["workspace_id", "last_seen", "person_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_customer_profiles_last_seen", table_name="customer_profiles")
