"""The inbox holds one row per tracking request instead of one per event.

A batch of 100 events was 100 inserts and 100 updates of the unique index on
``(workspace_id, message_id)``, inside the lock every API worker waits for; it is now one row
(``inbox_requests``, the messages as one JSON array). Re-sent events are recognised by the mover
instead, in ``inbox_message_ids``.

Every row of the old ``inbox`` is carried over, keeping its id: as a request of one message
(pending rows keep their payload and wait for the mover as before; moved rows keep their null
payload, failed ones their payload), and its id is taken by that request, so a retry of an event
already acknowledged is still stored once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Written out rather than imported from models: a migration is a frozen record of a change.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox_requests",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("moved_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_requests"),
    )
    op.create_index(
        "ix_inbox_requests_pending",
        "inbox_requests",
        ["id"],
        sqlite_where=sa.text("moved_at IS NULL"),
        postgresql_where=sa.text("moved_at IS NULL"),
    )
    op.create_table(
        "inbox_message_ids",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "message_id", name="pk_inbox_message_ids"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    # A one-message JSON array, as bytes, from the old payload text.
    array = (
        "convert_to('[' || payload || ']', 'UTF8')"
        if postgres
        else "CAST('[' || payload || ']' AS BLOB)"
    )
    op.execute(
        "INSERT INTO inbox_requests"
        " (id, workspace_id, received_at, message_count, payload, moved_at) "
        f"SELECT id, workspace_id, received_at, 1, {array}, moved_at FROM inbox"
    )
    op.execute(
        "INSERT INTO inbox_message_ids (workspace_id, message_id, inbox_id) "
        "SELECT workspace_id, message_id, id FROM inbox"
    )
    if postgres:
        # Ids were given explicitly: the sequence must start past them.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('inbox_requests', 'id'), "
            "coalesce((SELECT max(id) FROM inbox_requests), 0) + 1, false)"
        )
    op.drop_index("ix_inbox_pending", table_name="inbox")
    op.drop_table("inbox")


def downgrade() -> None:
    raise NotImplementedError("the per-event inbox is not restored: move the inbox first")
