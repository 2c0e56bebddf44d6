"""How figures read on the map: counts with thousands separators, rates as percentages, money
with the store's currency, durations in the largest sensible unit, and changes against the
previous period (percentage points for rates)."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from wayline.journeymap.model import Metric, Number

_SYMBOLS: Final[dict[str, str]] = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹"}


def money(value: Number | None, currency: str | None = None) -> str:
    if value is None:
        return "–"
    amount = Decimal(value).quantize(Decimal("0.01"))
    symbol = _SYMBOLS.get(currency or "", "")
    text = f"{amount:,.2f}"
    if symbol:
        return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"
    return f"{text} {currency}" if currency else text


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 90:
        return f"{sign}{s:.0f} s"
    if s < 90 * 60:
        return f"{sign}{s / 60:.0f} min"
    if s < 36 * 3600:
        return f"{sign}{s / 3600:.1f} h"
    return f"{sign}{s / 86400:.1f} days"


def value(m: Metric | None, currency: str | None = None) -> str:
    """The figure alone."""
    if m is None or m.value is None:
        return "–"
    if m.unit == "rate":
        return f"{float(m.value) * 100:.1f} %"
    if m.unit == "money":
        return money(m.value, currency)
    if m.unit == "seconds":
        return duration(float(m.value))
    if m.unit == "score":
        return f"{float(m.value):+.2f}"
    return f"{int(m.value):,}"


def change(m: Metric | None, currency: str | None = None) -> str:
    """The change against the previous period, or "" when not comparing; "new" when the
    figure had no previous value."""
    if m is None or m.previous is None:
        return ""
    delta = m.change
    if delta is None:
        return ""
    if m.unit == "rate":
        return f"{float(delta) * 100:+.1f} pp"
    ratio = m.change_ratio
    rel = f" ({ratio * 100:+.0f} %)" if ratio is not None else ""
    if m.unit == "money":
        text = money(abs(Decimal(delta)), currency)
        return f"{'+' if delta >= 0 else '-'}{text}{rel}"
    if m.unit == "seconds":
        d = duration(abs(float(delta)))
        return f"{'+' if delta >= 0 else '-'}{d}"
    if m.unit == "score":
        return f"{float(delta):+.2f}"
    return f"{int(delta):+,}{rel}"


def with_change(m: Metric | None, currency: str | None = None) -> str:
    """``12,345 (+123 (+1 %))``-style: the figure and, when comparing, its change."""
    ch = change(m, currency)
    return f"{value(m, currency)} ({ch})" if ch else value(m, currency)


def direction(m: Metric | None, higher_is_better: bool = True) -> str:
    """``up`` / ``down`` / ``flat`` / ``""``: for colouring a change good or bad."""
    if m is None or m.change is None:
        return ""
    delta = float(m.change)
    if abs(delta) < 1e-12:
        return "flat"
    return "good" if (delta > 0) == higher_is_better else "bad"


LOWER_IS_BETTER: Final = frozenset(
    {"cart_abandonment_rate", "refund_rate", "support_contacts", "dropped"}
)


def label(text: str) -> str:
    """``product_page`` → ``product page``; ``$page:cart`` → ``page view (cart)``."""
    if text.startswith("$page:"):
        return f"page view ({text.split(':', 1)[1].replace('_', ' ')})"
    if text.startswith("$"):
        return text[1:] + " (call)"
    return text.replace("_", " ") if text.islower() else text


_RATE_UNITS: Final = frozenset({"rate", "share", "ratio", "percent", "%"})


def is_share(metric: str, unit: str, value_: float, baseline: float) -> bool:
    """Whether a pain point's figures are shares (the detectors' metrics are "share of …",
    with ``unit`` naming what is counted: visits, customers, viewed products)."""
    if unit in _RATE_UNITS or metric.lower().startswith("share"):
        return True
    return 0.0 <= value_ <= 1.0 and 0.0 <= baseline <= 1.0 and unit == ""


def evidence_number(metric: str, unit: str, number: float, baseline: float) -> str:
    if is_share(metric, unit, number, baseline):
        return f"{number * 100:.1f} %"
    return f"{number:,.2f} {unit}".rstrip()


def evidence_figures(metric: str, unit: str, number: float, baseline: float) -> str:
    """``30.9 % of visits vs 77.3 % baseline``."""
    now = evidence_number(metric, unit, number, baseline)
    base = evidence_number(metric, unit, baseline, baseline)
    of = (
        f" of {unit}"
        if is_share(metric, unit, number, baseline) and unit not in _RATE_UNITS
        else ""
    )
    return f"{now}{of} vs {base} baseline"
