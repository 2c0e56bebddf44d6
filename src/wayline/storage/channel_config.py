"""Provider settings per workspace and channel, encrypted at rest (``channel_settings``).

The one place that reads and writes them: the settings API and pages store through it, and the
journey runtime and the webhook endpoints read through it. Values are validated with
:func:`wayline.channels.config.parse_settings` before they are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select

from wayline.channels.config import ProviderSettings, parse_settings
from wayline.storage.db import Database
from wayline.storage.secretbox import SecretBox
from wayline.storage.workspace_models import ChannelSettingRow


class ChannelConfigStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    def raw(self, workspace_id: str, channel: str) -> dict[str, Any] | None:
        """The stored settings object (secrets in clear: never answer it to a caller)."""
        with self.db.read() as conn:
            sealed = conn.execute(
                select(ChannelSettingRow.config_encrypted).where(
                    ChannelSettingRow.workspace_id == workspace_id,
                    ChannelSettingRow.channel == channel,
                )
            ).scalar_one_or_none()
        return None if sealed is None else self.box.open(sealed)

    def settings(self, workspace_id: str, channel: str) -> ProviderSettings | None:
        raw = self.raw(workspace_id, channel)
        return None if raw is None else parse_settings(channel, raw)

    def put(self, workspace_id: str, channel: str, raw: Mapping[str, Any]) -> ProviderSettings:
        """Validate and store (replacing what was there); the parsed settings."""
        parsed = parse_settings(channel, raw)
        self.db.upsert(
            ChannelSettingRow,
            {
                "workspace_id": workspace_id,
                "channel": channel,
                "config_encrypted": self.box.seal(dict(raw)),
                "updated_at": self.db.clock(),
            },
            ["workspace_id", "channel"],
        )
        return parsed

    def remove(self, workspace_id: str, channel: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                delete(ChannelSettingRow).where(
                    ChannelSettingRow.workspace_id == workspace_id,
                    ChannelSettingRow.channel == channel,
                )
            )
