"""The customer's local time: next "09:00 on a weekday", and quiet hours. Pure.

Inside Wayline every instant is tz-aware UTC; a customer's wall clock appears only here, for
``wait_until`` steps and quiet hours. Wall-clock times that do not exist (the hour skipped when
clocks go forward) resolve the way :mod:`zoneinfo` does with ``fold=0``: 02:30 on that night is
read with the offset before the change, which lands after the jump (03:30 summer time), so the
customer still gets the message on that morning and never twice.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def next_local_time(
    now: datetime, zone: ZoneInfo, at: time | None, weekdays: Collection[int] | None
) -> datetime:
    """The first instant ``>= now`` that is ``at`` o'clock on one of ``weekdays`` (0 = Monday)
    in ``zone``. Without ``at``, any time of an allowed day (its start, or ``now`` if today is
    one); without ``weekdays``, any day."""
    local = now.astimezone(zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if weekdays is not None and day.weekday() not in weekdays:
            continue
        if at is None:
            return now if offset == 0 else local_instant(day, time(0, 0), zone)
        candidate = local_instant(day, at, zone)
        if candidate >= now:
            return candidate
    # Only reached when `at` today has passed and the allowed weekday is today: next week.
    day = local.date() + timedelta(days=7)
    return local_instant(day, at or time(0, 0), zone)  # pragma: no cover


def quiet_until(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet hours ``[start, end)`` (local, may wrap midnight) around ``now`` end, or
    None if ``now`` is not in quiet hours."""
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        quiet = start <= clock < end
        end_day = local.date()
    else:  # wraps midnight: 21:00–08:00
        quiet = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not quiet:
        return None
    until = local_instant(end_day, end, zone)
    return until if until > now else now
