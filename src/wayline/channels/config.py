"""A workspace's provider settings per channel: their stored shape, validated.

The dashboard and the REST API store one JSON object per workspace and channel (encrypted, see
:mod:`wayline.storage.channel_config`); its fields are exactly those of the channel's settings
class — :class:`~wayline.channels.email.SmtpSettings` for ``email``,
:class:`~wayline.channels.whatsapp.WhatsAppSettings` for ``whatsapp``,
:class:`~wayline.channels.sms.TwilioSettings` for ``sms``. :func:`parse_settings` turns the
object into that class, refusing unknown fields and naming the field at fault, so a typo never
becomes a silently ignored setting. :data:`SECRET_FIELDS` are never shown back to anyone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from wayline.channels.email import SmtpSettings
from wayline.channels.sms import TwilioSettings
from wayline.channels.whatsapp import WhatsAppSettings
from wayline.errors import InputError

ProviderSettings = SmtpSettings | WhatsAppSettings | TwilioSettings

SETTINGS_TYPES: Final[dict[str, type[ProviderSettings]]] = {
    "email": SmtpSettings,
    "whatsapp": WhatsAppSettings,
    "sms": TwilioSettings,
}

SECRET_FIELDS: Final[frozenset[str]] = frozenset(
    {"password", "access_token", "app_secret", "verify_token", "auth_token"}
)


def parse_settings(channel: str, raw: Mapping[str, Any]) -> ProviderSettings:
    """``raw`` as the settings of ``channel``; :class:`InputError` naming the field otherwise."""
    cls = SETTINGS_TYPES.get(channel)
    if cls is None:
        raise InputError(
            f"unknown channel '{channel}' (known: {', '.join(SETTINGS_TYPES)})", field="channel"
        )
    known = {f.name for f in dataclasses.fields(cls)}
    for name in raw:
        if name not in known:
            raise InputError(
                f"unknown setting for {channel} (known: {', '.join(sorted(known))})", field=name
            )
    try:
        settings: ProviderSettings = TypeAdapter(cls).validate_python(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InputError(first["msg"], field=field) from None
    return settings


def masked(channel: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as shown back: secrets replaced by ``"••••"`` and their last 4 characters."""
    shown: dict[str, Any] = {}
    for name, value in raw.items():
        if name in SECRET_FIELDS and value:
            text = str(value)
            shown[name] = "••••" + (text[-4:] if len(text) >= 12 else "")
        else:
            shown[name] = value
    return shown
