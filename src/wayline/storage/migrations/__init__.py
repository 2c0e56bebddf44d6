"""Alembic migrations of the operational store, run by :class:`wayline.storage.db.Database`."""
