"""Who may use the REST API and the dashboard, and for which workspace.

Three kinds of credentials, each naming exactly one workspace:

- **Write keys** (``wayline.storage.db``): public, pasted into the store's pages; they can only
  *send* events to the tracking API.
- **Secret API keys** (here): ``wl_sk_<id>_<secret>``, for the REST API, shown once when made.
  Only SHA-256 of the secret is stored; the id finds the row, so checking a key is one lookup
  and a constant-time comparison.
- **Dashboard accounts** (here): an e-mail and a password (argon2id hash); logging in makes a
  session whose random token goes in an HttpOnly cookie (only its hash is stored) together with a
  CSRF token that every form must send back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update

from wayline.errors import AuthError, Conflict, InputError, NotFound
from wayline.storage.db import Database
from wayline.storage.models import Workspace
from wayline.storage.workspace_models import ApiKeyRow, UserRow, WebSessionRow

KEY_PREFIX = "wl_sk_"
SESSION_LIFETIME = timedelta(days=14)
_hasher = PasswordHasher()


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    workspace_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class WebSession:
    user_id: int
    email: str
    workspace_id: str
    csrf_token: str
    expires_at: datetime


class Accounts:
    """API keys, dashboard users and their sessions, in the operational store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- secret API keys ----------------------------------------------------------------------

    def create_api_key(self, workspace_id: str, name: str) -> tuple[ApiKeyInfo, str]:
        """A new key for the workspace: its record and the full key (never retrievable again)."""
        self._require_workspace(workspace_id)
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = self.db.clock()
        with self.db.write() as conn:
            conn.execute(
                insert(ApiKeyRow).values(
                    id=key_id,
                    workspace_id=workspace_id,
                    name=name,
                    secret_hash=_sha256(secret),
                    created_at=now,
                )
            )
        info = ApiKeyInfo(key_id, workspace_id, name, now, None, None)
        return info, f"{KEY_PREFIX}{key_id}_{secret}"

    def workspace_of_api_key(self, key: str) -> str:
        """The workspace a secret key belongs to; :class:`AuthError` when unknown or revoked."""
        if not key.startswith(KEY_PREFIX) or key.count("_") < 3:
            raise AuthError("not a Wayline API key (expected 'Authorization: Bearer wl_sk_…')")
        key_id, _, secret = key[len(KEY_PREFIX) :].partition("_")
        with self.db.read() as conn:
            row = conn.execute(
                select(ApiKeyRow.workspace_id, ApiKeyRow.secret_hash, ApiKeyRow.revoked_at).where(
                    ApiKeyRow.id == key_id
                )
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _sha256(secret)):
            raise AuthError("unknown API key")
        if row.revoked_at is not None:
            raise AuthError("this API key was revoked")
        return str(row.workspace_id)

    def list_api_keys(self, workspace_id: str) -> list[ApiKeyInfo]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    ApiKeyRow.id,
                    ApiKeyRow.workspace_id,
                    ApiKeyRow.name,
                    ApiKeyRow.created_at,
                    ApiKeyRow.last_used_at,
                    ApiKeyRow.revoked_at,
                )
                .where(ApiKeyRow.workspace_id == workspace_id)
                .order_by(ApiKeyRow.created_at)
            ).all()
            return [
                ApiKeyInfo(r.id, r.workspace_id, r.name, r.created_at, r.last_used_at, r.revoked_at)
                for r in rows
            ]

    def revoke_api_key(self, workspace_id: str, key_id: str) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.workspace_id == workspace_id)
                .values(revoked_at=self.db.clock())
            )
        if done.rowcount == 0:
            raise NotFound(f"no API key '{key_id}' in this workspace")

    # -- dashboard users and sessions -----------------------------------------------------------

    def create_user(self, workspace_id: str, email: str, password: str) -> int:
        email = email.strip().lower()
        if "@" not in email:
            raise InputError("not an e-mail address", field="email")
        if len(password) < 8:
            raise InputError("a password needs at least 8 characters", field="password")
        self._require_workspace(workspace_id)
        with self.db.write() as conn:
            if conn.execute(select(UserRow.id).where(UserRow.email == email)).first():
                raise Conflict(f"a user '{email}' already exists")
            result = conn.execute(
                insert(UserRow)
                .values(
                    workspace_id=workspace_id,
                    email=email,
                    password_hash=_hasher.hash(password),
                    created_at=self.db.clock(),
                )
                .returning(UserRow.id)
            )
            return int(result.scalar_one())

    def log_in(self, email: str, password: str) -> tuple[str, WebSession]:
        """A new session for these credentials: (cookie token, session). :class:`AuthError`
        when they do not match — the same message whether the e-mail or the password is wrong."""
        with self.db.read() as conn:
            user = conn.execute(
                select(
                    UserRow.id, UserRow.email, UserRow.workspace_id, UserRow.password_hash
                ).where(UserRow.email == email.strip().lower())
            ).first()
        try:
            if user is None:
                raise VerificationError
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise AuthError("wrong e-mail or password") from None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = self.db.clock()
        with self.db.write() as conn:
            conn.execute(
                insert(WebSessionRow).values(
                    token_hash=_sha256(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
        return token, WebSession(
            user.id, user.email, user.workspace_id, csrf, now + SESSION_LIFETIME
        )

    def session(self, token: str) -> WebSession | None:
        """The live session of a cookie token, or ``None``."""
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    WebSessionRow.user_id,
                    UserRow.email,
                    UserRow.workspace_id,
                    WebSessionRow.csrf_token,
                    WebSessionRow.expires_at,
                )
                .join(UserRow, UserRow.id == WebSessionRow.user_id)
                .where(WebSessionRow.token_hash == _sha256(token))
            ).first()
        if row is None or row.expires_at <= self.db.clock():
            return None
        return WebSession(row.user_id, row.email, row.workspace_id, row.csrf_token, row.expires_at)

    def log_out(self, token: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == _sha256(token)))

    def _require_workspace(self, workspace_id: str) -> None:
        with self.db.read() as conn:
            if (
                conn.execute(select(Workspace.id).where(Workspace.id == workspace_id)).first()
                is None
            ):
                raise NotFound(f"no workspace '{workspace_id}'")
