"""Durations and local times as journey files write them.

A journey author writes how long to wait in one of three documented forms, all meaning the same:

- compact: ``30s``, ``15m``, ``2h``, ``2d``, ``1w``, and combinations in that order: ``1d12h``;
- English: ``2 hours``, ``1 day``, ``90 minutes``, ``2 days 3 hours``, ``1 week and 2 days``
  (``hr``/``hrs``/``min``/``mins``/``sec``/``secs`` accepted);
- ISO 8601: ``P2D``, ``PT2H``, ``P1DT12H``, ``P1W``.

Months and years are refused: they are not fixed lengths ("1 month" from 31 January is what?),
so a journey says ``30d`` or ``P30D``. A duration is positive; ``0h`` is refused too, because a
delay of nothing is a mistake more often than an intent. Pure.
"""

from __future__ import annotations

import re
from datetime import time, timedelta

_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_COMPACT = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_WORD = re.compile(
    r"(\d+)\s*(weeks?|days?|hours?|hrs?|minutes?|mins?|seconds?|secs?)\b", re.IGNORECASE
)
_WORD_SEPARATORS = re.compile(r"^[\s,]*(?:and[\s,]*)?$", re.IGNORECASE)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

DURATION_HELP = (
    "write a duration like 30m, 2h, 1d12h, '2 days', '90 minutes' or P2D "
    "(weeks, days, hours, minutes, seconds; months and years have no fixed length)"
)


def parse_duration(text: str) -> timedelta:
    """A duration in one of the documented forms → a positive ``timedelta``.

    Raises:
        ValueError: the text is not one of the forms, or is zero; the message says what to write.
    """
    raw = text.strip()
    if not raw:
        raise ValueError(f"empty duration: {DURATION_HELP}")
    seconds = _compact(raw)
    if seconds is None:
        seconds = _iso(raw)
    if seconds is None:
        seconds = _words(raw)
    if seconds is None:
        raise ValueError(f"{text!r} is not a duration: {DURATION_HELP}")
    if seconds <= 0:
        raise ValueError(f"{text!r} is zero: a duration must be positive")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The compact form of a duration (``1d12h``), the inverse of :func:`parse_duration`."""
    seconds = int(value.total_seconds())
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_local_time(text: str) -> time:
    """``HH:MM`` (24-hour) → a naive ``time``, meant in the customer's own time zone."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time of day: write HH:MM, 24-hour, e.g. 09:30")
    return time(int(match.group(1)), int(match.group(2)))


def _compact(raw: str) -> int | None:
    match = _COMPACT.match(raw)
    if not match or not any(match.groups()):
        return None
    return sum(int(v) * _UNIT_SECONDS[u] for v, u in zip(match.groups(), "wdhms", strict=True) if v)


def _iso(raw: str) -> int | None:
    match = _ISO.match(raw.upper())
    if not match or not any(match.groups()) or raw.upper().endswith("T"):
        return None
    return sum(int(v) * _UNIT_SECONDS[u] for v, u in zip(match.groups(), "wdhms", strict=True) if v)


def _words(raw: str) -> int | None:
    total = 0
    position = 0
    found = False
    for match in _WORD.finditer(raw):
        # Whatever lies between two amounts must be a separator, so "2 days fish" is refused.
        if not _WORD_SEPARATORS.match(raw[position : match.start()]):
            return None
        unit = match.group(2).lower()[0]
        total += int(match.group(1)) * _UNIT_SECONDS[unit]
        position = match.end()
        found = True
    if not found or raw[position:].strip():
        return None
    return total
