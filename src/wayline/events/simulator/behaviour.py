"""What customers do: visits, their outcome step by step, orders and what follows them.

The simulation runs in *rounds*: round ``k`` is every customer's ``k``-th visit. Within a round
all customers act at once, as numpy arrays (no Python loop per customer or per event), and what
happened in earlier rounds (identified? had a late delivery?) carries over in per-customer state.
A store of 500 k customers takes a few dozen rounds.

Each step of a visit is a Bernoulli draw against a rate from :class:`~.config.Rates`. A problem
multiplies one rate for one segment. Every draw uses one uniform number ``u`` per visit, so the
visits a problem *lost* are known exactly: those with ``rate * factor <= u < rate`` — they would
have passed without the problem (recorded as ``lost_*`` flags for the ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import numpy as np

from wayline.events.normalize import epoch_micros
from wayline.events.simulator.catalogue import (
    COUNTRIES,
    DEVICE_SHARES,
    PERSONAS,
    PLATFORMS,
    SOCIAL_TRAFFIC,
    TRAFFIC,
    TRAFFIC_DIRECT,
    TRAFFIC_EMAIL,
    TRAFFIC_SEARCH,
    TRAFFIC_WHATSAPP,
    BoolArray,
    Catalogue,
    IntArray,
)
from wayline.events.simulator.config import ProblemKind, StoreConfig

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
MAX_ROUNDS = 120
NEVER = np.iinfo(np.int64).max

# Visits by hour of day (UTC ~ the shoppers' local time in Western Europe): lunch and evening.
_HOUR_WEIGHTS = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 4, 4.5, 5, 5, 4.5, 4.5, 4.5, 5, 6, 7, 7.5, 7, 5, 2.5]
)
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()
# Where a return visit comes from: the customer's own acquisition traffic, direct, an email,
# a WhatsApp message (both only for identified customers) or a search.
_RETURN_MIX = np.array([0.35, 0.30, 0.20, 0.08, 0.07])
PAYMENT_METHODS = ("card", "paypal", "klarna")
_PAYMENT_P = np.array([0.6, 0.3, 0.1])


@dataclass
class Customers:
    """Per customer (index = customer number)."""

    persona: IntArray
    platform: IntArray
    second_platform: IntArray
    country: IntArray
    traffic: IntArray
    arrival: IntArray
    identified: BoolArray


@dataclass
class Sessions:
    """Per visit, in round order (a customer's visits are in time order)."""

    cust: IntArray
    start: IntArray
    round: IntArray
    traffic: IntArray
    platform: IntArray
    second_device: BoolArray
    logged_in: BoolArray
    identify: IntArray
    """0 none, 1 login on a second device, 2 at checkout, 3 newsletter sign-up."""
    n_browse: IntArray
    n_views: IntArray
    views: IntArray
    """Products viewed, flat, in visit order (``n_views`` per visit)."""
    candidate: IntArray
    added: BoolArray
    quantity: IntArray
    checkout: BoolArray
    loops: IntArray
    loop_problem: BoolArray
    """The visit's checkout is subject to the checkout-loop problem (its country)."""
    loop_abandoned: BoolArray
    loop_support: BoolArray
    paid: BoolArray
    failed: BoolArray
    outage_failure: BoolArray
    fail_support: BoolArray
    completed: BoolArray
    order: IntArray
    email_open: BoolArray
    """An email was opened (without a visit) some hours before this visit."""
    lost_mobile: BoolArray
    lost_outage: BoolArray
    lost_reviews: BoolArray
    lost_social: BoolArray
    lost_late: BoolArray
    lost_loop: BoolArray

    def __len__(self) -> int:
        return len(self.cust)


@dataclass
class Orders:
    """Per started checkout (an order id is allocated at checkout, completed or not)."""

    session: IntArray
    cust: IntArray
    value_cents: IntArray
    item_offsets: IntArray
    """``len + 1`` offsets into ``item_product``/``item_quantity``."""
    item_product: IntArray
    item_quantity: IntArray
    payment_method: IntArray
    completed: BoolArray
    delivery_days: IntArray
    days_late: IntArray
    late: BoolArray
    delivered_at: IntArray
    """-1 when not delivered within the period."""
    refund_at: IntArray
    refund_reason: IntArray
    review_at: IntArray
    review_rating: IntArray
    late_support_at: IntArray

    def __len__(self) -> int:
        return len(self.session)


def to_us(ts: datetime) -> int:
    """An aware datetime as microseconds since the epoch (exact: no float rounding)."""
    return epoch_micros(ts)


def _concat(blocks: list[dict[str, np.ndarray[Any, Any]]], cls: type[Any]) -> Any:
    names = [f.name for f in fields(cls)]
    return cls(**{n: np.concatenate([b[n] for b in blocks]) for n in names})


def _time_of_day(rng: np.random.Generator, n: int) -> IntArray:
    hours = rng.choice(24, n, p=_HOUR_P)
    return np.asarray(hours * HOUR + rng.integers(0, HOUR, n), dtype=np.int64)


def _floor_day(ts: IntArray, origin: int) -> IntArray:
    return np.asarray(origin + (ts - origin) // DAY * DAY, dtype=np.int64)


def _draw_products(
    rng: np.random.Generator, persona: IntArray, cumulative: list[np.ndarray[Any, Any]]
) -> IntArray:
    """One product per entry, chosen with the entry's persona's preferences."""
    out = np.empty(len(persona), dtype=np.int64)
    u = rng.random(len(persona))
    last = len(cumulative[0]) - 1
    for p, cum in enumerate(cumulative):
        mask = persona == p
        out[mask] = np.minimum(np.searchsorted(cum, u[mask], side="right"), last)
    return out


def make_customers(config: StoreConfig, rng: np.random.Generator) -> Customers:
    """Who visits: persona, device, country, first traffic source and first visit time."""
    n = config.customers
    persona = rng.choice(len(PERSONAS), n, p=[p.share for p in PERSONAS])
    mobile_share = np.array(
        [
            p.mobile_share if p.mobile_share is not None else DEVICE_SHARES["mobile"]
            for p in PERSONAS
        ]
    )[persona]
    # Non-mobile customers split desktop/tablet in the base proportions.
    desktop_of_rest = DEVICE_SHARES["desktop"] / (
        DEVICE_SHARES["desktop"] + DEVICE_SHARES["tablet"]
    )
    u = rng.random(n)
    device = np.where(
        u < mobile_share,
        0,
        np.where(u < mobile_share + (1 - mobile_share) * desktop_of_rest, 1, 2),
    )
    device_names = ("mobile", "desktop", "tablet")
    platform = np.empty(n, dtype=np.int64)
    second = np.empty(n, dtype=np.int64)
    for d, dname in enumerate(device_names):
        options = [i for i, p in enumerate(PLATFORMS) if p.device_type == dname]
        shares = np.array([PLATFORMS[i].share for i in options])
        mask = device == d
        platform[mask] = rng.choice(options, int(mask.sum()), p=shares / shares.sum())
        # The other device of a customer who shops on two: a phone for desktop/tablet users,
        # a desktop for phone users.
        other = "desktop" if dname == "mobile" else "mobile"
        other_options = [i for i, p in enumerate(PLATFORMS) if p.device_type == other]
        other_shares = np.array([PLATFORMS[i].share for i in other_options])
        second[mask] = rng.choice(
            other_options, int(mask.sum()), p=other_shares / other_shares.sum()
        )
    country = rng.choice(len(COUNTRIES), n, p=[c[1] for c in COUNTRIES])
    acquisition = np.array([t.acquisition for t in TRAFFIC])
    traffic = rng.choice(len(TRAFFIC), n, p=acquisition / acquisition.sum())
    # A growing store: more new customers later in the period (density ~ x^0.3).
    start = to_us(config.start)
    day = np.floor(config.days * rng.random(n) ** (1 / 1.3)).astype(np.int64)
    arrival = start + np.minimum(day, config.days - 1) * DAY + _time_of_day(rng, n)
    arrival = np.minimum(arrival, start + config.days * DAY - 3 * HOUR)
    return Customers(
        persona=persona.astype(np.int64),
        platform=platform,
        second_platform=second,
        country=country.astype(np.int64),
        traffic=traffic.astype(np.int64),
        arrival=arrival.astype(np.int64),
        identified=np.zeros(n, dtype=np.bool_),
    )


@dataclass(frozen=True)
class OutageWindow:
    start: int
    end: int


def outage_window(config: StoreConfig) -> OutageWindow:
    """The payment outage: a week (shorter in short periods) a little after mid-period."""
    start = to_us(config.start)
    length = max(2, min(7, config.days // 20))
    first_day = int(config.days * 0.55)
    return OutageWindow(start + first_day * DAY, start + (first_day + length) * DAY)


def simulate_behaviour(
    config: StoreConfig, catalogue: Catalogue, customers: Customers, rng: np.random.Generator
) -> tuple[Sessions, Orders]:
    """Every visit and order of the period, round by round (see the module docstring)."""
    r = config.rates
    n = config.customers
    start_us = to_us(config.start)
    end_us = start_us + config.days * DAY
    last_start = end_us - 2 * HOUR  # a visit lasts under an hour: none is cut by the period's end
    window = outage_window(config)
    has = config.has
    persona = customers.persona
    returns = np.array([p.returns for p in PERSONAS])
    gap_days = np.array([p.gap_days for p in PERSONAS])
    browse_mean = np.array([p.browse for p in PERSONAS])
    views_mean = np.array([p.views for p in PERSONAS])
    extra_mean = np.array([p.extra_items for p in PERSONAS])
    cumulative = [np.cumsum(catalogue.choice_weights(p)) for p in PERSONAS]
    is_mobile = np.array([p.device_type == "mobile" for p in PLATFORMS])
    loop_country = next(i for i, c in enumerate(COUNTRIES) if c[0] == r.loop_country)
    price = catalogue.price_cents

    next_start = customers.arrival.copy()
    alive = np.ones(n, dtype=np.bool_)
    identified = np.zeros(n, dtype=np.bool_)
    second_linked = np.zeros(n, dtype=np.bool_)
    late_at = np.full(n, NEVER, dtype=np.int64)
    session_blocks: list[dict[str, np.ndarray[Any, Any]]] = []
    order_blocks: list[dict[str, np.ndarray[Any, Any]]] = []
    n_sessions = 0
    n_orders = 0
    n_items = 0

    for k in range(MAX_ROUNDS):
        idx = np.flatnonzero(alive & (next_start < last_start))
        if idx.size == 0:
            break
        m = idx.size
        t = next_start[idx]
        pers = persona[idx]
        ident_before = identified[idx]
        # Identified customers sometimes come back on their other device and log in there.
        second = ident_before & (rng.random(m) < 0.15) if k > 0 else np.zeros(m, np.bool_)
        plat = np.where(second, customers.second_platform[idx], customers.platform[idx])
        login = second & ~second_linked[idx]
        logged_in = np.where(second, second_linked[idx], ident_before)
        if k == 0:
            traffic = customers.traffic[idx]
        else:
            mix = rng.choice(len(_RETURN_MIX), m, p=_RETURN_MIX)
            options = np.array([0, TRAFFIC_DIRECT, TRAFFIC_EMAIL, TRAFFIC_WHATSAPP, TRAFFIC_SEARCH])
            traffic = np.where(mix == 0, customers.traffic[idx], options[mix])
            # Only identified customers get emails and WhatsApp messages.
            messaged = (traffic == TRAFFIC_EMAIL) | (traffic == TRAFFIC_WHATSAPP)
            traffic = np.where(messaged & ~ident_before & (mix != 0), TRAFFIC_DIRECT, traffic)
        social = SOCIAL_TRAFFIC[traffic]
        churned = has(ProblemKind.LATE_DELIVERY_CHURN) & (late_at[idx] <= t)

        # Browsing.
        n_browse = 1 + np.minimum(rng.poisson(browse_mean[pers]), 8)
        viewed = rng.random(m) < r.view
        extra_views = views_mean[pers] + np.where(
            has(ProblemKind.SOCIAL_NO_BUY) & social, r.social_extra_views, 0.0
        )
        n_views = np.where(viewed, 1 + np.minimum(rng.poisson(extra_views), 11), 0)
        views = _draw_products(rng, np.repeat(pers, n_views), cumulative)
        ends = np.cumsum(n_views)
        candidate = np.where(viewed, views[np.maximum(ends - 1, 0)] if views.size else 0, -1)

        # Add to cart: the last product viewed.
        f_reviews = np.where(
            has(ProblemKind.MISSING_REVIEWS)
            & viewed
            & ~catalogue.has_reviews[np.maximum(candidate, 0)],
            r.no_reviews_add_factor,
            1.0,
        )
        f_social = np.where(has(ProblemKind.SOCIAL_NO_BUY) & social, r.social_add_factor, 1.0)
        f_late = np.where(churned, r.late_churn_add_factor, 1.0)
        p_add = r.add * f_reviews * f_social * f_late
        u = rng.random(m)
        added = viewed & (u < p_add)
        missed = viewed & (u >= p_add)
        lost_reviews = missed & (u < p_add / f_reviews)
        lost_social = missed & (u < p_add / f_social)
        lost_late = missed & (u < p_add / f_late)
        quantity = 1 + (rng.random(m) < 0.15)
        checkout = added & (rng.random(m) < r.checkout)

        identify = np.zeros(m, dtype=np.int64)
        identify[login] = 1
        identify[checkout & ~ident_before] = 2
        newsletter = ~checkout & ~ident_before & (rng.random(m) < r.newsletter)
        identify[newsletter] = 3

        # Checkout errors send the customer back to the cart; they retry, or give up.
        in_loop_country = has(ProblemKind.CHECKOUT_LOOP) & (customers.country[idx] == loop_country)
        p_err = np.where(in_loop_country, r.loop_error, r.checkout_error)
        pending = checkout.copy()
        passed = np.zeros(m, dtype=np.bool_)
        abandoned = np.zeros(m, dtype=np.bool_)
        loops = np.zeros(m, dtype=np.int64)
        u_first = rng.random(m)
        for attempt in range(3):
            u = u_first if attempt == 0 else rng.random(m)
            err = pending & (u < p_err)
            passed |= pending & ~err
            loops += err
            retry = err & (rng.random(m) < 0.65) if attempt < 2 else np.zeros(m, np.bool_)
            abandoned |= err & ~retry
            pending = retry
        lost_loop = abandoned & in_loop_country & (u_first >= r.checkout_error)
        loop_support = abandoned & (rng.random(m) < 0.3)

        # The payment form.
        f_mobile = np.where(
            has(ProblemKind.MOBILE_PAYMENT_DROPOFF) & is_mobile[plat], r.mobile_pay_factor, 1.0
        )
        u = rng.random(m)
        paid = passed & (u < r.pay * f_mobile)
        lost_mobile = passed & (u >= r.pay * f_mobile) & (u < r.pay)
        in_window = has(ProblemKind.PAYMENT_OUTAGE) & (t >= window.start) & (t < window.end)
        p_fail = np.where(in_window, r.outage_error, r.payment_error)
        u = rng.random(m)
        failed = paid & (u < p_fail)
        lost_outage = failed & in_window & (u >= r.payment_error)
        fail_support = failed & (rng.random(m) < np.where(in_window, 0.35, 0.2))
        completed = paid & ~failed
        email_open = (k > 0) & ident_before & (rng.random(m) < 0.3)

        # Orders: one per started checkout.
        co = np.flatnonzero(checkout)
        nco = co.size
        n_extra = np.minimum(rng.poisson(extra_mean[pers[co]]), 3)
        per_order = 1 + n_extra
        offsets = np.concatenate([[0], np.cumsum(per_order)])
        item_product = _draw_products(rng, np.repeat(pers[co], per_order), cumulative)
        item_quantity = np.ones(int(offsets[-1]), dtype=np.int64)
        item_product[offsets[:-1]] = candidate[co]
        item_quantity[offsets[:-1]] = quantity[co]
        line = price[item_product] * item_quantity
        value = np.add.reduceat(line, offsets[:-1]) if nco else np.zeros(0, np.int64)
        payment_method = rng.choice(len(PAYMENT_METHODS), nco, p=_PAYMENT_P)
        o_completed = completed[co]
        delivery_days = 2 + np.minimum(rng.poisson(1.5, nco), 5)
        late = rng.random(nco) < r.late_delivery
        days_late = np.where(late, 2 + np.minimum(rng.poisson(4.0, nco), 12), 0)
        order_day = _floor_day(t[co], start_us)
        delivered_at = (
            order_day + (delivery_days + days_late) * DAY + _daytime(rng, nco, 8, 19)
        ).astype(np.int64)
        delivered = o_completed & (delivered_at < end_us)
        delivered_at = np.where(delivered, delivered_at, -1)
        refund_at = delivered_at + rng.integers(1, 15, nco) * DAY + _daytime(rng, nco, 0, 10)
        refund_at = np.where(
            delivered & (rng.random(nco) < r.refund) & (refund_at < end_us), refund_at, -1
        )
        refund_reason = rng.integers(0, 3, nco)
        review_at = delivered_at + rng.integers(1, 11, nco) * DAY + _daytime(rng, nco, 0, 10)
        review_at = np.where(
            delivered & (rng.random(nco) < r.review) & (review_at < end_us), review_at, -1
        )
        review_rating = np.where(late, rng.integers(1, 4, nco), rng.integers(3, 6, nco))
        late_support_at = order_day + (delivery_days + 1) * DAY + _daytime(rng, nco, 9, 18)
        late_support_at = np.where(
            o_completed & late & (rng.random(nco) < 0.45) & (late_support_at < end_us),
            late_support_at,
            -1,
        )
        if has(ProblemKind.LATE_DELIVERY_CHURN):
            hit = delivered & late
            who = idx[co[hit]]
            late_at[who] = np.minimum(late_at[who], delivered_at[hit])

        order = np.full(m, -1, dtype=np.int64)
        order[co] = n_orders + np.arange(nco)
        session_blocks.append(
            {
                "cust": idx,
                "start": t,
                "round": np.full(m, k, dtype=np.int64),
                "traffic": traffic,
                "platform": plat,
                "second_device": second,
                "logged_in": logged_in,
                "identify": identify,
                "n_browse": n_browse,
                "n_views": n_views,
                "views": views,
                "candidate": candidate,
                "added": added,
                "quantity": quantity,
                "checkout": checkout,
                "loops": loops,
                "loop_problem": in_loop_country,
                "loop_abandoned": abandoned,
                "loop_support": loop_support,
                "paid": paid,
                "failed": failed,
                "outage_failure": failed & in_window,
                "fail_support": fail_support,
                "completed": completed,
                "order": order,
                "email_open": email_open,
                "lost_mobile": lost_mobile,
                "lost_outage": lost_outage,
                "lost_reviews": lost_reviews,
                "lost_social": lost_social,
                "lost_late": lost_late,
                "lost_loop": lost_loop,
            }
        )
        order_blocks.append(
            {
                "session": n_sessions + co,
                "cust": idx[co],
                "value_cents": value,
                "item_offsets": offsets[:-1] + n_items,
                "item_product": item_product,
                "item_quantity": item_quantity,
                "payment_method": payment_method,
                "completed": o_completed,
                "delivery_days": delivery_days,
                "days_late": days_late,
                "late": late,
                "delivered_at": delivered_at,
                "refund_at": refund_at,
                "refund_reason": refund_reason,
                "review_at": review_at,
                "review_rating": review_rating,
                "late_support_at": late_support_at,
            }
        )
        n_sessions += m
        n_orders += nco
        n_items += int(offsets[-1])

        # State for the next round.
        identified[idx] |= identify > 0
        second_linked[idx] |= second
        # A purchase brings customers back (unless a late delivery has put them off).
        cont_p = np.where(completed, np.maximum(returns[pers], r.return_after_order), returns[pers])
        cont_p = cont_p * np.where(churned, r.late_churn_return_factor, 1.0)
        alive[idx[rng.random(m) >= cont_p]] = False
        # Buyers come back sooner (to shop again, or to see what is new).
        mean_gap = gap_days[pers] * np.where(completed, r.gap_after_order, 1.0)
        gap = ((0.3 + rng.exponential(mean_gap)) * DAY).astype(np.int64)
        nxt = _floor_day(t + gap, start_us) + _time_of_day(rng, m)
        next_start[idx] = np.where(nxt <= t + 2 * HOUR, nxt + DAY, nxt)

    customers.identified = identified
    sessions: Sessions = _concat(session_blocks, Sessions)
    orders: Orders = _concat(order_blocks, Orders)
    orders.item_offsets = np.concatenate([orders.item_offsets, [n_items]]).astype(np.int64)
    return sessions, orders


def _daytime(rng: np.random.Generator, n: int, first_hour: int, last_hour: int) -> IntArray:
    """A time of day between two hours, as an offset in microseconds."""
    return np.asarray(rng.integers(first_hour * HOUR, last_hour * HOUR, n), dtype=np.int64)
