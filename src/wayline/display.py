"""How shares and durations read in the terminal and on the dashboard's pages."""

from __future__ import annotations


def percent(value: float | None) -> str:
    """``0.123`` → ``12.3%``; unknown → an em dash."""
    return "—" if value is None else f"{value:.1%}"


def duration(seconds: float | None) -> str:
    """Seconds in the unit a person reads best: ``45 s``, ``12.5 min``, ``3.2 h``, ``4.0 d``."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"
