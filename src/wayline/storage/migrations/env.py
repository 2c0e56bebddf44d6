"""Alembic environment: always run programmatically, on a connection handed over by the caller.

:meth:`wayline.storage.db.Database.migrate` opens the connection, takes the lock that keeps two
starting processes from migrating at once, and passes the connection in ``config.attributes``;
there is no ``alembic.ini`` and no URL here.
"""

from __future__ import annotations

from alembic import context

# Importing these modules registers their tables on Base.metadata.
import wayline.storage.journey_models
import wayline.storage.workspace_models  # noqa: F401
from wayline.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through wayline.storage.db.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
