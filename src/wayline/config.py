"""Settings, read from the environment (``WAYLINE_*``) with embedded defaults.

With nothing set, everything lives in one data folder (``./wayline-data``): a SQLite file for
operational state and a DuckDB file for events and analytics. ``WAYLINE_DATABASE_URL`` moves
operational state to PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAYLINE_", extra="ignore")

    home: Path = Path("wayline-data")
    """The data folder: the embedded databases and anything else Wayline keeps on disk."""

    database_url: str | None = None
    """SQLAlchemy URL of the operational store; default: SQLite at ``<home>/wayline.sqlite3``."""

    analytics_path: Path | None = None
    """DuckDB file of the analytics store; default: ``<home>/events.duckdb``."""

    move_interval_seconds: float = 1.0
    """How often acknowledged events are moved from the operational store into analytics."""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'wayline.sqlite3').resolve()}"

    @property
    def resolved_analytics_path(self) -> Path:
        return self.analytics_path or self.home / "events.duckdb"

    def ensure_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
