"""A workspace's stored settings that are not provider credentials (``workspace_settings``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from wayline.storage.db import Database
from wayline.storage.workspace_models import WorkspaceSettingsRow


def stored_sending(db: Database, workspace_id: str) -> dict[str, Any] | None:
    """The sending rules as saved from the dashboard or the REST API; ``None`` if never set."""
    with db.read() as conn:
        stored = conn.scalar(
            select(WorkspaceSettingsRow.sending).where(
                WorkspaceSettingsRow.workspace_id == workspace_id
            )
        )
    return stored or None
