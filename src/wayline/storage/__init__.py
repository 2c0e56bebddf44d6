"""Storage: the operational store (SQLAlchemy + Alembic) and the analytics event store (DuckDB)."""
