"""Wayline's exceptions: one base, user-caused errors that say what and where.

    WaylineError
    ├── InputError          bad data from a user: a file row, a request field, a definition
    │   └── PayloadTooLarge  a body or event over the size limit
    ├── AuthError           unknown or missing key
    │   └── Forbidden        known caller, not allowed (a form without its CSRF token…)
    ├── NotFound            a named object does not exist
    ├── Conflict            the object's state forbids it (publishing an invalid draft…)
    ├── ConfigError         settings that cannot work
    └── Busy                a resource is held by another process for now; retry shortly

The CLI turns these into a message and a non-zero exit code; the API into a 4xx JSON response.
Anything else is a bug and is allowed to surface as one.
"""

from __future__ import annotations


class WaylineError(Exception):
    """Base of every error Wayline raises on purpose."""


class InputError(WaylineError):
    """Bad input, located as precisely as possible: file (or source), row, field."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.row = row
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.source is not None:
            where.append(str(self.source))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class PayloadTooLarge(InputError):
    """A request body or a single event is over the allowed size."""


class AuthError(WaylineError):
    """A missing, unknown or revoked key."""


class Forbidden(AuthError):
    """A known caller asking for something it may not do (a form without its CSRF token)."""


class Conflict(WaylineError):
    """The request is well-formed but the object's current state forbids it."""


class NotFound(WaylineError):
    """A named object (workspace, customer, journey…) does not exist."""


class ConfigError(WaylineError):
    """Settings that cannot work (an unreachable database, a bad path)."""


class Busy(WaylineError):
    """A resource another process holds for the moment (the analytics file during a write)."""
