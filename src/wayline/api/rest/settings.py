"""``/api/v1/settings/…``: channel credentials, the sending policy, the tracking write keys.

Channel credentials (SMTP, WhatsApp Cloud API, Twilio SMS) are stored encrypted through
:class:`wayline.storage.channel_config.ChannelConfigStore`, in the shape
:mod:`wayline.channels.config` validates, and never answered in clear: a secret comes back
masked (``••••1234``). A PUT that leaves a secret out (or null) keeps the stored one,
so a form showing the masked value can be saved without typing the password again.

The sending policy (``workspace_settings.sending``) holds quiet hours and a frequency cap, the
parameters of :class:`wayline.journeys.policies.QuietHours` and
:class:`~wayline.journeys.policies.FrequencyCap`; :func:`send_policy` builds the policy from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select

from wayline.api.rest.deps import Workspace
from wayline.channels.config import SECRET_FIELDS, masked
from wayline.config import Settings
from wayline.journeys.policies import SendPolicy, policy_from_settings
from wayline.storage.channel_config import ChannelConfigStore
from wayline.storage.db import Database
from wayline.storage.models import WriteKey
from wayline.storage.secretbox import SecretBox
from wayline.storage.workspace_models import ChannelSettingRow, WorkspaceSettingsRow
from wayline.storage.workspace_settings import stored_sending

router = APIRouter(prefix="/settings", tags=["Settings"])

ChannelName = Literal["email", "whatsapp", "sms"]
MASK = "••••"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ChannelSettingsOut(BaseModel):
    channel: ChannelName
    configured: bool
    settings: dict[str, Any] | None = Field(description="Secrets masked, e.g. '••••1234'.")
    updated_at: datetime | None


def _store(db: Database, settings: Settings) -> ChannelConfigStore:
    return ChannelConfigStore(db, SecretBox.for_settings(settings))


def channel_out(
    db: Database, settings: Settings, workspace_id: str, channel: str
) -> ChannelSettingsOut:
    values = _store(db, settings).raw(workspace_id, channel)
    with db.read() as conn:
        updated = conn.scalar(
            select(ChannelSettingRow.updated_at).where(
                ChannelSettingRow.workspace_id == workspace_id,
                ChannelSettingRow.channel == channel,
            )
        )
    return ChannelSettingsOut(
        channel=channel,
        configured=values is not None,
        settings=masked(channel, values) if values is not None else None,
        updated_at=updated,
    )


def save_channel(
    db: Database, settings: Settings, workspace_id: str, channel: str, body: dict[str, Any]
) -> ChannelSettingsOut:
    """Validate and store a channel's settings.

    A secret left out, empty, or sent back masked keeps its stored value: forms show secrets
    masked and must be savable without typing them again.
    """
    store = _store(db, settings)
    old = store.raw(workspace_id, channel) or {}
    values: dict[str, Any] = {}
    for name, value in body.items():
        if isinstance(value, str):
            value = value.strip()
        if value == "" or value is None:
            continue  # unset: the settings class's default
        values[name] = value
    for name in SECRET_FIELDS:
        given = values.get(name)
        if given is None or (isinstance(given, str) and given.startswith(MASK)):
            values.pop(name, None)
            if old.get(name):
                values[name] = old[name]
    store.put(workspace_id, channel, values)
    return channel_out(db, settings, workspace_id, channel)


_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class QuietHoursIn(_Strict):
    # "HH:MM" strings, not times: JSON Schema's "time" format demands a UTC offset, and quiet
    # hours are in each customer's own zone.
    start: str = Field(pattern=_CLOCK, description="Local time they begin, HH:MM, e.g. 21:00.")
    end: str = Field(pattern=_CLOCK, description="Local time they end, e.g. 08:00 (next day).")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursIn:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class FrequencyCapIn(_Strict):
    max_messages: int = Field(ge=1, le=100, description="Messages per customer…")
    per_hours: int = Field(ge=1, le=24 * 90, description="…in any window of this many hours.")


class SendingSettings(_Strict):
    """Send-time rules for every journey of the workspace (consent and unsubscribes always)."""

    quiet_hours: QuietHoursIn | None = Field(
        default_factory=lambda: QuietHoursIn(start="21:00", end="08:00"),
        description="None: send at any hour.",
    )
    frequency_cap: FrequencyCapIn | None = Field(
        default_factory=lambda: FrequencyCapIn(max_messages=3, per_hours=24),
        description="None: no cap.",
    )
    default_timezone: str = Field(
        "UTC", max_length=64, description="For customers whose time zone is unknown."
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def send_policy(sending: SendingSettings) -> SendPolicy:
    """The :class:`SendPolicy` the workspace's settings describe (what the runtime applies)."""
    return policy_from_settings(sending.model_dump(mode="json"))


def load_sending(db: Database, workspace_id: str) -> SendingSettings:
    stored = stored_sending(db, workspace_id)
    return SendingSettings.model_validate(stored) if stored else SendingSettings()


def save_sending(db: Database, workspace_id: str, sending: SendingSettings) -> SendingSettings:
    db.upsert(
        WorkspaceSettingsRow,
        {
            "workspace_id": workspace_id,
            "sending": sending.model_dump(mode="json"),
            "updated_at": datetime.now(UTC),
        },
        ["workspace_id"],
    )
    return load_sending(db, workspace_id)


class WriteKeyOut(BaseModel):
    key: str = Field(description="Public: it only lets one add events to this workspace.")
    created_at: datetime
    revoked_at: datetime | None


def write_keys(db: Database, workspace_id: str) -> list[WriteKeyOut]:
    with db.read() as conn:
        rows = conn.execute(
            select(WriteKey.key, WriteKey.created_at, WriteKey.revoked_at)
            .where(WriteKey.workspace_id == workspace_id)
            .order_by(WriteKey.revoked_at.is_not(None), WriteKey.created_at, WriteKey.key)
        ).all()
    return [WriteKeyOut(key=k, created_at=c, revoked_at=r) for k, c, r in rows]


ChannelPath = Annotated[ChannelName, Path(description="email, whatsapp or sms")]


@router.get("/channels/{channel}", response_model=ChannelSettingsOut)
def read_channel(ctx: Workspace, channel: ChannelPath) -> ChannelSettingsOut:
    return channel_out(ctx.db, ctx.settings, ctx.workspace_id, channel)


@router.put("/channels/{channel}", response_model=ChannelSettingsOut)
def write_channel(ctx: Workspace, channel: ChannelPath, body: dict[str, Any]) -> ChannelSettingsOut:
    """Store the channel's settings (encrypted). Leave a secret out to keep the stored one."""
    return save_channel(ctx.db, ctx.settings, ctx.workspace_id, channel, body)


@router.get("/sending", response_model=SendingSettings)
def read_sending(ctx: Workspace) -> SendingSettings:
    return load_sending(ctx.db, ctx.workspace_id)


@router.put("/sending", response_model=SendingSettings)
def write_sending(ctx: Workspace, body: SendingSettings) -> SendingSettings:
    return save_sending(ctx.db, ctx.workspace_id, body)


@router.get("/write-keys", response_model=list[WriteKeyOut])
def list_write_keys(ctx: Workspace) -> list[WriteKeyOut]:
    return write_keys(ctx.db, ctx.workspace_id)
