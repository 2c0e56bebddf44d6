"""How people write the analytics' parameters — dates, property filters, funnel exclusions —
read in one place for the CLI, the REST API and the dashboard, so that ``--since 2026-03-01``
and ``?since=2026-03-01`` mean the same and fail the same way (an :class:`InputError` naming
the parameter).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from wayline.analytics.filters import PropertyFilter, parse_filter
from wayline.analytics.funnels import FunnelExclusion, parse_steps
from wayline.errors import InputError


def parse_time(text: str | None, field: str) -> datetime | None:
    """``2026-03-01`` or an ISO date-time (naive = UTC) → an aware UTC datetime; blank = None."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = datetime.combine(date.fromisoformat(text), time())
        except ValueError:
            raise InputError(f"not an ISO date or time: {text!r}", field=field) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Far-off years overflow once shifted to UTC or moved by a window; no store has them.
    if not 1900 <= value.year <= 2200:
        raise InputError(f"{text!r} is not between the years 1900 and 2200", field=field)
    return value.astimezone(UTC)


def parse_filters(where: list[str] | None, field: str = "where") -> tuple[PropertyFilter, ...]:
    """``key=value`` filters (see :func:`wayline.analytics.filters.parse_filter`)."""
    out = []
    for text in where or ():
        try:
            out.append(parse_filter(text))
        except InputError as exc:
            raise InputError(exc.message, field=field) from None
    return tuple(out)


_EXCLUDE_RE = re.compile(r"^(?P<events>[^@]+?)(?:@(?P<a>\d+)-(?P<b>\d+))?$")


def parse_exclusion(text: str, field: str = "exclude") -> FunnelExclusion:
    """``event|other[key=value]@1-3`` → an exclusion between steps 1 and 3 (default: first to
    last step)."""
    m = _EXCLUDE_RE.match(text.strip())
    if not m:
        raise InputError(f"cannot read {text!r}; write EVENT or EVENT@1-3", field=field)
    try:
        steps = parse_steps(m["events"])
    except InputError as exc:
        raise InputError(exc.message, field=field) from None
    if len(steps) != 1:
        raise InputError(f"an exclusion is one step, got {text!r}", field=field)
    step = steps[0]
    if m["a"] is None:
        return FunnelExclusion(step.events, step.filters)
    return FunnelExclusion(step.events, step.filters, int(m["a"]), int(m["b"]))
