"""Ground truth: each injected problem described precisely, and measured on the events made.

For every :class:`~.config.ProblemKind` there is one metric, defined so that it can be
recomputed with plain SQL over the ``events`` table (``docs/sample-store.md`` gives the
queries): a rate among *units* (visits, viewed products or customers) of an affected segment,
compared with the same rate in a baseline segment. The simulator measures the metric on its own
visits and orders — for every kind, injected or not, so a clean store reports its (equal) rates
too — and records, for injected problems, how many units failed *only because of the problem*
(``lost``; see :mod:`.behaviour`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from wayline.events.simulator.behaviour import Orders, Sessions
from wayline.events.simulator.catalogue import COUNTRIES, PLATFORMS, SOCIAL_TRAFFIC, Catalogue
from wayline.events.simulator.config import ProblemKind, StoreConfig

Segment = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Rate:
    """``numerator`` of ``denominator`` units."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float:
        return self.numerator / self.denominator if self.denominator else float("nan")


@dataclass(frozen=True)
class Measurement:
    """A problem's metric in the affected segment and in the baseline segment."""

    kind: ProblemKind
    affected: Rate
    baseline: Rate
    affected_customers: int
    """Distinct customers among the affected segment's units (exposed to the problem)."""

    @property
    def ratio(self) -> float:
        """Affected rate / baseline rate: ~1 in a clean store."""
        return self.affected.value / self.baseline.value if self.baseline.value else float("nan")


@dataclass(frozen=True)
class ProblemSpec:
    """What a problem's metric is (the same for every store)."""

    title: str
    segment: Segment
    """Who is affected: (event column or ``properties.<key>`` of the events in ``steps``,
    value) pairs; for the outage, ``timestamp`` and the window as an ISO 8601 interval."""
    baseline_segment: Segment
    steps: tuple[str, str]
    """The step where the problem bites: (from event, to event)."""
    unit: str
    metric: str
    """The rate measured, in words (docs/sample-store.md has it as SQL)."""


@dataclass(frozen=True)
class InjectedProblem:
    """One problem hidden in the store, and how strongly it shows in the events."""

    kind: ProblemKind
    title: str
    segment: Segment
    baseline_segment: Segment
    steps: tuple[str, str]
    start: datetime
    end: datetime
    """The problem is active in ``[start, end)`` (the whole period unless it is an outage)."""
    unit: str
    metric: str
    injected_factor: float
    """What the simulator multiplied: the step's pass rate in the segment over the base rate
    (for ``checkout_loop``, the error rate). The observed ratio follows it, diluted by noise and,
    for ``late_delivery_churn``, amplified by fewer return visits."""
    measurement: Measurement
    lost: int
    """Units that did not pass the step only because of the problem (counterfactual)."""

    @property
    def affected_customers(self) -> int:
        return self.measurement.affected_customers

    @property
    def observed_ratio(self) -> float:
        return self.measurement.ratio


SPECS: dict[ProblemKind, ProblemSpec] = {
    ProblemKind.MOBILE_PAYMENT_DROPOFF: ProblemSpec(
        "Mobile checkouts are lost at the payment step",
        (("device_type", "mobile"),),
        (("device_type", "desktop"),),
        ("Checkout Started", "Payment Info Entered"),
        "visit",
        "share of visits with a Checkout Started that also have a Payment Info Entered",
    ),
    ProblemKind.PAYMENT_OUTAGE: ProblemSpec(
        "Payments failed during an outage",
        (("timestamp", "outage window"),),
        (("timestamp", "outside the outage window"),),
        ("Payment Info Entered", "Order Completed"),
        "visit",
        "share of visits with a Payment Info Entered (timed in the window or not) that also "
        "have an Order Completed",
    ),
    ProblemKind.MISSING_REVIEWS: ProblemSpec(
        "Products without reviews are rarely added to the cart",
        (("properties.has_reviews", "false"),),
        (("properties.has_reviews", "true"),),
        ("Product Viewed", "Product Added"),
        "viewed product",
        "share of distinct (visit, product_id) pairs with a Product Viewed that also have a "
        "Product Added of the same product in the visit",
    ),
    ProblemKind.LATE_DELIVERY_CHURN: ProblemSpec(
        "Customers whose first order arrived late do not buy again",
        (("properties.late", "true"),),
        (("properties.late", "false"),),
        ("Order Delivered", "Order Completed"),
        "customer",
        "share of customers whose first Order Completed has an Order Delivered (late or not) "
        "who have another Order Completed after that delivery",
    ),
    ProblemKind.SOCIAL_NO_BUY: ProblemSpec(
        "Visitors from social media browse but do not buy",
        (("channel", "social"),),
        (("channel", "not social"),),
        ("$page", "Order Completed"),
        "visit",
        "share of visits (session_id) that have an Order Completed",
    ),
    ProblemKind.CHECKOUT_LOOP: ProblemSpec(
        "Checkout sends customers of one country back to the cart",
        (("country", "FR"),),
        (("country", "not FR"),),
        ("Checkout Started", "Checkout Error"),
        "visit",
        "share of visits with a Checkout Started that have a Checkout Error (followed by a "
        "Cart Viewed: sent back to the cart)",
    ),
}


def _rate(passed: npt.NDArray[Any], among: npt.NDArray[Any]) -> Rate:
    return Rate(int((passed & among).sum()), int(among.sum()))


def _customers(cust: npt.NDArray[Any]) -> int:
    """How many distinct customers (numbers are small and dense: a bincount beats a sort)."""
    return int(np.count_nonzero(np.bincount(cust))) if len(cust) else 0


def _distinct(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    ordered = np.sort(values)
    return (
        ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if len(values) else ordered
    )


def _first_index(values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """The distinct values, and the index of each one's first occurrence."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.concatenate([[True], ordered[1:] != ordered[:-1]]) if len(values) else ordered
    return ordered[first], order[first]


def measure(
    kind: ProblemKind,
    config: StoreConfig,
    catalogue: Catalogue,
    customer_country: npt.NDArray[Any],
    sessions: Sessions,
    orders: Orders,
    payment_at: npt.NDArray[Any],
    completed_at: npt.NDArray[Any],
    window: tuple[int, int],
) -> Measurement:
    """The metric of ``kind`` on this store's visits and orders (see :data:`SPECS`)."""
    s = sessions
    if kind is ProblemKind.MOBILE_PAYMENT_DROPOFF:
        device = np.array([p.device_type for p in PLATFORMS])[s.platform]
        hit = s.checkout & (device == "mobile")
        base = s.checkout & (device == "desktop")
        return Measurement(kind, _rate(s.paid, hit), _rate(s.paid, base), _customers(s.cust[hit]))
    if kind is ProblemKind.PAYMENT_OUTAGE:
        inside = (payment_at >= window[0]) & (payment_at < window[1])
        hit = s.paid & inside
        base = s.paid & ~inside
        return Measurement(
            kind, _rate(s.completed, hit), _rate(s.completed, base), _customers(s.cust[hit])
        )
    if kind is ProblemKind.MISSING_REVIEWS:
        sess = np.repeat(np.arange(len(s)), s.n_views)
        pairs = _distinct(sess * len(catalogue) + s.views)
        sess, product = pairs // len(catalogue), pairs % len(catalogue)
        added = s.added[sess] & (s.candidate[sess] == product)
        hit = ~catalogue.has_reviews[product]
        return Measurement(
            kind, _rate(added, hit), _rate(added, ~hit), _customers(s.cust[sess[hit]])
        )
    if kind is ProblemKind.LATE_DELIVERY_CHURN:
        done = np.flatnonzero(orders.completed)
        cust = orders.cust[done]
        ordered_at = completed_at[orders.session[done]]
        last = np.full(config.customers, -1, dtype=np.int64)
        np.maximum.at(last, cust, ordered_at)
        firsts, first_at = _first_index(cust)
        first_order = done[first_at]
        delivered_at = orders.delivered_at[first_order]
        delivered = delivered_at >= 0
        late = orders.late[first_order]
        again = last[firsts] > delivered_at
        hit = delivered & late
        base = delivered & ~late
        return Measurement(kind, _rate(again, hit), _rate(again, base), int(hit.sum()))
    if kind is ProblemKind.SOCIAL_NO_BUY:
        hit = SOCIAL_TRAFFIC[s.traffic]
        return Measurement(
            kind, _rate(s.completed, hit), _rate(s.completed, ~hit), _customers(s.cust[hit])
        )
    if kind is ProblemKind.CHECKOUT_LOOP:
        loop_country = next(i for i, c in enumerate(COUNTRIES) if c[0] == config.rates.loop_country)
        in_country = customer_country[s.cust] == loop_country
        looped = s.loops > 0
        hit = s.checkout & in_country
        base = s.checkout & ~in_country
        return Measurement(kind, _rate(looped, hit), _rate(looped, base), _customers(s.cust[hit]))
    raise AssertionError(kind)


def injected_factor(kind: ProblemKind, config: StoreConfig) -> float:
    r = config.rates
    return {
        ProblemKind.MOBILE_PAYMENT_DROPOFF: r.mobile_pay_factor,
        ProblemKind.PAYMENT_OUTAGE: (1 - r.outage_error) / (1 - r.payment_error),
        ProblemKind.MISSING_REVIEWS: r.no_reviews_add_factor,
        ProblemKind.LATE_DELIVERY_CHURN: r.late_churn_add_factor,
        ProblemKind.SOCIAL_NO_BUY: r.social_add_factor,
        ProblemKind.CHECKOUT_LOOP: r.loop_error / r.checkout_error,
    }[kind]


def lost_units(kind: ProblemKind, sessions: Sessions) -> int:
    flags = {
        ProblemKind.MOBILE_PAYMENT_DROPOFF: sessions.lost_mobile,
        ProblemKind.PAYMENT_OUTAGE: sessions.lost_outage,
        ProblemKind.MISSING_REVIEWS: sessions.lost_reviews,
        ProblemKind.LATE_DELIVERY_CHURN: sessions.lost_late,
        ProblemKind.SOCIAL_NO_BUY: sessions.lost_social,
        ProblemKind.CHECKOUT_LOOP: sessions.lost_loop,
    }[kind]
    return int(flags.sum())
