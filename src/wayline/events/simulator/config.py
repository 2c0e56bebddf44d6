"""What to simulate: the store's size and period, and which problems to hide in it.

A :class:`StoreConfig` is all the simulator needs; the same config (same seed) always gives the
same events. The base rates below are the clean store's behaviour; each :class:`ProblemKind`
changes one of them for one segment, and nothing else, so that its effect can be measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class ProblemKind(StrEnum):
    """A problem the simulator can hide in the store (each recorded in the ground truth)."""

    MOBILE_PAYMENT_DROPOFF = "mobile_payment_dropoff"
    """Mobile checkouts are lost at the payment form far more often than desktop ones."""

    PAYMENT_OUTAGE = "payment_outage"
    """For a few days the payment provider fails: errors after ``Payment Info Entered``."""

    MISSING_REVIEWS = "missing_reviews"
    """Products without reviews are added to the cart far less often once viewed."""

    LATE_DELIVERY_CHURN = "late_delivery_churn"
    """Customers whose order arrived late almost never buy again."""

    SOCIAL_NO_BUY = "social_no_buy"
    """Visitors from social media browse (more than others) but hardly ever buy."""

    CHECKOUT_LOOP = "checkout_loop"
    """Shipping-address validation rejects one country: checkout errors send customers back to
    the cart, some several times, and some contact support."""


ALL_PROBLEMS: frozenset[ProblemKind] = frozenset(ProblemKind)

#: Events per customer at the default period (calibrated on the simulator; see ``for_events``).
_EVENTS_PER_CUSTOMER = 21.2
_DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Rates:
    """The clean store's per-session probabilities, and how each problem changes them.

    The clean rates do not depend on device, channel, country, persona or product reviews: any
    difference between those segments in a clean store is noise. Problems multiply one rate
    for one segment (``*_factor``).
    """

    view: float = 0.8
    """A session views at least one product."""
    add: float = 0.3
    """A session that viewed products adds the last one viewed to the cart."""
    checkout: float = 0.65
    """A session with an add starts checkout."""
    pay: float = 0.82
    """A started checkout reaches ``Payment Info Entered``."""
    payment_error: float = 0.02
    """A payment fails anyway (sporadic errors, present in every store)."""
    checkout_error: float = 0.03
    """Checkout sends the customer back to the cart (sporadic, every store)."""
    late_delivery: float = 0.15
    """An order arrives late (in every store; only its consequence is a problem)."""
    return_after_order: float = 0.97
    """Probability of coming back after a visit with an order (at least)."""
    gap_after_order: float = 0.5
    """Factor on the mean days until the next visit after an order."""
    refund: float = 0.04
    review: float = 0.12
    newsletter: float = 0.04
    """A session that does not check out ends with a newsletter sign-up (an identify)."""

    mobile_pay_factor: float = 0.4
    outage_error: float = 0.7
    """Share of payments that fail during the outage."""
    no_reviews_add_factor: float = 0.35
    late_churn_add_factor: float = 0.08
    late_churn_return_factor: float = 0.45
    social_add_factor: float = 0.12
    social_extra_views: float = 1.5
    loop_country: str = "FR"
    loop_error: float = 0.45


@dataclass(frozen=True)
class StoreConfig:
    """The store to simulate.

    Args:
        seed: the random seed; the same config always gives the same store.
        customers: how many people visit during the period (not all of them buy).
        start: the first day (aware UTC); events fall in ``[start, start + days)``.
        days: the length of the period.
        problems: the problems to hide (default: all); an empty set gives a clean store.
        workspace_id: the workspace the events belong to.
        rates: the base rates and problem strengths.
    """

    seed: int = 7
    customers: int = 5000
    start: datetime = _DEFAULT_START
    days: int = 180
    problems: frozenset[ProblemKind] = ALL_PROBLEMS
    workspace_id: str = "default"
    rates: Rates = field(default_factory=Rates)

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError("customers must be at least 1")
        if self.days < 7:
            raise ValueError("days must be at least 7")
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware (UTC)")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "problems", frozenset(ProblemKind(p) for p in self.problems))

    @classmethod
    def for_events(
        cls,
        events: int,
        *,
        seed: int = 7,
        start: datetime = _DEFAULT_START,
        days: int = 180,
        problems: Iterable[ProblemKind] = ALL_PROBLEMS,
        workspace_id: str = "default",
    ) -> StoreConfig:
        """A config sized to give about ``events`` events (within ~10 % from 10 k events up;
        a store of a few dozen customers varies more).

        The number of events per customer is roughly constant at the default period; a shorter
        period has fewer return visits, so fewer events per customer.
        """
        if events < 1:
            raise ValueError("events must be at least 1")
        per_customer = _EVENTS_PER_CUSTOMER * min(1.0, (days / 180) ** 0.5)
        return cls(
            seed=seed,
            customers=max(1, round(events / per_customer)),
            start=start,
            days=days,
            problems=frozenset(problems),
            workspace_id=workspace_id,
        )

    def has(self, problem: ProblemKind) -> bool:
        return problem in self.problems
