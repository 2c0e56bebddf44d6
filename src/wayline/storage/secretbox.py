"""The data folder's secrets: encryption at rest for provider credentials (SMTP passwords,
WhatsApp and SMS tokens), and the key that signs tracking links.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) with one key per data folder:
``WAYLINE_SECRET_KEY`` when set (several servers sharing a PostgreSQL store must share it),
otherwise a key generated on first use into ``<home>/secret.key``, readable by its owner only.
Losing the key loses the stored credentials (they can be entered again), nothing else.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

from wayline.config import Settings
from wayline.errors import ConfigError


def _kept_secret(settings: Settings, name: str, make: Callable[[], bytes]) -> bytes:
    """The secret in ``<home>/<name>``, made by ``make`` on first use, readable by its owner
    only. O_EXCL: processes starting at once agree on the first one written."""
    path = Path(settings.home) / name
    if not path.exists():
        settings.ensure_home()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(make())
    return path.read_bytes().strip()


def tracking_secret(settings: Settings) -> str:
    """The secret that signs tracking and unsubscribe links: ``WAYLINE_TRACKING_SECRET``, else
    one kept in the data folder (created on first use). Servers and workers on several
    machines must share the variable: a link signed by one is checked by another."""
    given = os.environ.get("WAYLINE_TRACKING_SECRET")
    if given:
        return given
    return _kept_secret(
        settings, "tracking-secret", lambda: secrets.token_urlsafe(32).encode()
    ).decode()


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise ConfigError(
                "WAYLINE_SECRET_KEY must be a Fernet key (32 url-safe base64-encoded bytes)"
            ) from exc

    @classmethod
    def for_settings(cls, settings: Settings) -> SecretBox:
        env = os.environ.get("WAYLINE_SECRET_KEY")
        if env:
            return cls(env.encode())
        return cls(_kept_secret(settings, "secret.key", Fernet.generate_key))

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(value)).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            value = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigError(
                "stored channel credentials cannot be decrypted with this data folder's key "
                "(was WAYLINE_SECRET_KEY changed?); enter them again"
            ) from exc
        if not isinstance(value, dict):
            raise ConfigError("stored channel credentials are not an object")
        return value
