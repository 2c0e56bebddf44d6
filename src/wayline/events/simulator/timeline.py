"""Visits and orders → the events they produce, as numeric columns sorted by time.

Each visit is laid out as a script of positions: the landing page at 0, more pages, then for
each product viewed its page and ``Product Viewed``, then ``Product Added``, the cart, the
``$identify`` when a guest gives an email at checkout, ``Checkout Started``, any checkout error
loops (``Checkout Error`` → ``Cart Viewed`` → ``Checkout Started`` again), ``Payment Info
Entered`` and ``Order Completed`` or ``Payment Failed``. An event at position ``p`` happens at
``start + p * STEP + jitter`` with a jitter under ``STEP``, so events keep their order within a
visit. Emails and WhatsApp messages precede the visits they bring; deliveries, refunds, reviews
and "where is my order?" contacts follow orders (server-side: no device, no visit).

Nothing here builds a string: text is made later, chunk by chunk (:mod:`.materialize`), so the
frame of a 10 M-event store stays a few hundred MB.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from wayline.events.simulator.behaviour import (
    HOUR,
    MINUTE,
    SECOND,
    Orders,
    Sessions,
    to_us,
)
from wayline.events.simulator.catalogue import (
    CATEGORIES,
    PAGE_CART,
    PAGE_CHECKOUT,
    PAGE_COLLECTION0,
    PAGE_FAQ,
    PAGE_HOME,
    PAGE_SEARCH,
    PAGE_SHIPPING,
    TRAFFIC_EMAIL,
    TRAFFIC_WHATSAPP,
    Catalogue,
    IntArray,
)
from wayline.events.simulator.config import StoreConfig

STEP = 45 * SECOND

#: (event name, Segment call type), indexed by event code.
EVENT_KINDS: tuple[tuple[str, str], ...] = (
    ("$page", "page"),
    ("$identify", "identify"),
    ("Product Viewed", "track"),
    ("Product Added", "track"),
    ("Cart Viewed", "track"),
    ("Checkout Started", "track"),
    ("Checkout Error", "track"),
    ("Payment Info Entered", "track"),
    ("Payment Failed", "track"),
    ("Order Completed", "track"),
    ("Support Contacted", "track"),
    ("Order Delivered", "track"),
    ("Order Refunded", "track"),
    ("Product Reviewed", "track"),
    ("Email Opened", "track"),
    ("Email Link Clicked", "track"),
    ("WhatsApp Message Read", "track"),
    ("WhatsApp Link Clicked", "track"),
)
CODE = {name: i for i, (name, _) in enumerate(EVENT_KINDS)}
PAGE = CODE["$page"]
IDENTIFY = CODE["$identify"]

#: ``aux`` of ``Support Contacted``: topic * 3 + way of contact.
SUPPORT_TOPICS = ("checkout", "payment", "delivery")
SUPPORT_VIA = ("chat", "email", "whatsapp")


@dataclass
class EventFrame:
    """One row per event, numeric; ``-1`` means none.

    ``anon``: which anonymous id the row carries (0 the customer's first device, 1 the second,
    -1 none: server-side and messaging events). ``ident``: the row carries the ``userId``.
    ``platform``/``traffic`` index the catalogue tables (-1: server-side, no browser context).
    ``aux`` depends on the event: the page for ``$page`` (-1 = the product's page), the quantity
    for ``Product Added``, the error for ``Checkout Error``/``Payment Failed``, topic/way for
    ``Support Contacted``.
    """

    ts: IntArray
    received: IntArray
    code: IntArray
    sess: IntArray
    cust: IntArray
    anon: IntArray
    ident: IntArray
    platform: IntArray
    traffic: IntArray
    product: IntArray
    order: IntArray
    aux: IntArray

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: IntArray) -> EventFrame:
        return EventFrame(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def slice(self, first: int, stop: int) -> EventFrame:
        """Rows ``first…stop`` as views (no copy)."""
        return EventFrame(**{f.name: getattr(self, f.name)[first:stop] for f in fields(self)})

    def widen(self) -> EventFrame:
        """A copy with every column int64, for arithmetic without overflow."""
        return EventFrame(**{f.name: getattr(self, f.name).astype(np.int64) for f in fields(self)})


# Storage types of the frame's columns: as narrow as their values allow, because gathering a
# 10 M-row frame in time order costs memory bandwidth in proportion to its width.
_DTYPES: dict[str, type[np.generic]] = {
    "ts": np.int64,
    "received": np.int64,
    "code": np.int8,
    "sess": np.int32,
    "cust": np.int32,
    "anon": np.int8,
    "ident": np.int8,
    "platform": np.int8,
    "traffic": np.int8,
    "product": np.int16,
    "order": np.int32,
    "aux": np.int16,
}


class _Rows:
    """Collects event rows family by family, then concatenates them."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray[Any, Any]]] = {
            f.name: [] for f in fields(EventFrame) if f.name != "received"
        }

    def add(self, code: int, ts: IntArray, **columns: Any) -> None:
        n = len(ts)
        if n == 0:
            return
        defaults = {"sess": -1, "anon": -1, "ident": 1, "platform": -1, "traffic": -1}
        defaults |= {"product": -1, "order": -1, "aux": 0}
        self.parts["ts"].append(np.asarray(ts, dtype=np.int64))
        self.parts["code"].append(np.full(n, code, dtype=_DTYPES["code"]))
        for name, default in defaults.items():
            value = np.asarray(columns.get(name, default)).astype(_DTYPES[name])
            self.parts[name].append(np.broadcast_to(value, (n,)))
        self.parts["cust"].append(np.asarray(columns["cust"]).astype(_DTYPES["cust"]))

    def sorted_frame(self, start: int, end: int, rng: np.random.Generator) -> EventFrame:
        """All rows in time order, those outside ``[start, end)`` dropped."""
        ts = np.concatenate(self.parts["ts"])
        # Any deterministic order will do for the rare equal timestamps (unrelated events:
        # a visit's own events are STEP apart), so the faster unstable sort is fine.
        by_time = np.argsort(ts, kind="quicksort")
        ts = ts[by_time]
        # Events outside the period (messages before the first day, deliveries after the
        # last) sit at both ends of the time order.
        first, stop = np.searchsorted(ts, [start, end])
        keep = by_time[first:stop]
        cols = {
            name: np.concatenate(parts)[keep] for name, parts in self.parts.items() if name != "ts"
        }
        ts = ts[first:stop]
        # Received by the collector shortly after (the SDK batches for up to a few seconds).
        received = ts + rng.integers(20_000, 2 * SECOND, len(ts))
        return EventFrame(ts=ts, received=received, **cols)


def _ragged(counts: IntArray) -> tuple[IntArray, IntArray]:
    """For groups of ``counts[i]`` items: each item's group and its index within the group."""
    group = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return group, np.arange(int(counts.sum())) - starts[group]


@dataclass
class Timeline:
    frame: EventFrame
    payment_at: IntArray
    """Per visit: the time of its ``Payment Info Entered`` (-1 none)."""
    completed_at: IntArray
    """Per visit: the time of its ``Order Completed`` (-1 none)."""


def build_timeline(
    config: StoreConfig,
    catalogue: Catalogue,
    sessions: Sessions,
    orders: Orders,
    rng: np.random.Generator,
) -> Timeline:
    """Lay out every event of every visit and order (see the module docstring), sorted by time."""
    s = sessions
    n = len(s)
    rows = _Rows()
    start_us = to_us(config.start)
    end_us = start_us + config.days * 24 * HOUR

    login = (s.identify == 1).astype(np.int64)
    nb = s.n_browse
    nv = s.n_views
    after_views = nb + login + 2 * nv
    after_add = after_views + s.added
    checkout_identify = (s.identify == 2).astype(np.int64)
    checkout_at = after_add + 2 + checkout_identify
    loops_at = checkout_at + 2
    pay_at = loops_at + 3 * s.loops - s.loop_abandoned
    big = np.iinfo(np.int64).max // 4
    ident_pos = np.where(s.logged_in, 0, big)
    ident_pos = np.where(s.identify == 1, 1, ident_pos)
    ident_pos = np.where(s.identify == 2, after_add + 2, ident_pos)
    ident_pos = np.where(s.identify == 3, after_add, ident_pos)

    def visit(code: int, sess: IntArray, pos: IntArray, **extra: Any) -> None:
        rows.add(
            code,
            s.start[sess] + pos * STEP + rng.integers(0, STEP * 2 // 3, len(sess)),
            sess=sess,
            cust=s.cust[sess],
            anon=s.second_device[sess],
            ident=pos >= ident_pos[sess],
            platform=s.platform[sess],
            traffic=s.traffic[sess],
            **extra,
        )

    everyone = np.arange(n)
    # Landing page: the home page or a collection.
    landing = np.where(
        rng.random(n) < 0.5, PAGE_HOME, PAGE_COLLECTION0 + rng.integers(0, len(CATEGORIES), n)
    )
    visit(PAGE, everyone, np.zeros(n, dtype=np.int64), aux=landing)
    logins = np.flatnonzero(login)
    visit(IDENTIFY, logins, np.ones(len(logins), dtype=np.int64))
    # More pages: collections, search, the shipping page, the FAQ.
    sess, j = _ragged(nb - 1)
    kinds = np.array([PAGE_HOME, PAGE_SEARCH, PAGE_SHIPPING, PAGE_FAQ])
    u = rng.random(len(sess))
    browse = np.where(
        u < 0.55,
        PAGE_COLLECTION0 + rng.integers(0, len(CATEGORIES), len(sess)),
        kinds[rng.integers(0, len(kinds), len(sess))],
    )
    visit(PAGE, sess, j + 1 + login[sess], aux=browse)
    # Product pages and views.
    sess, j = _ragged(nv)
    pos = nb[sess] + login[sess] + 2 * j
    visit(PAGE, sess, pos, product=s.views, aux=-1)
    visit(CODE["Product Viewed"], sess, pos + 1, product=s.views)
    sess = np.flatnonzero(s.added)
    visit(
        CODE["Product Added"],
        sess,
        after_views[sess],
        product=s.candidate[sess],
        aux=s.quantity[sess],
    )
    # Cart, identify, checkout.
    sess = np.flatnonzero(s.checkout)
    order = s.order[sess]
    visit(PAGE, sess, after_add[sess], aux=PAGE_CART)
    visit(CODE["Cart Viewed"], sess, after_add[sess] + 1)
    guests = np.flatnonzero(s.identify == 2)
    visit(IDENTIFY, guests, after_add[guests] + 2)
    visit(PAGE, sess, checkout_at[sess], aux=PAGE_CHECKOUT)
    visit(CODE["Checkout Started"], sess, checkout_at[sess] + 1, order=order)
    # Checkout errors: back to the cart, and again (or not).
    sess, j = _ragged(s.loops)
    base = loops_at[sess] + 3 * j
    order = s.order[sess]
    # The error says why: a sporadic session expiry, or the postcode check of the loop problem.
    visit(CODE["Checkout Error"], sess, base, order=order, aux=s.loop_problem[sess])
    visit(CODE["Cart Viewed"], sess, base + 1)
    retried = ~(s.loop_abandoned[sess] & (j == s.loops[sess] - 1))
    visit(CODE["Checkout Started"], sess[retried], base[retried] + 2, order=order[retried])
    sess = np.flatnonzero(s.loop_support)
    visit(
        CODE["Support Contacted"],
        sess,
        pay_at[sess],
        order=s.order[sess],
        aux=0 * 3 + rng.integers(0, 3, len(sess)),
    )
    # Payment.
    sess = np.flatnonzero(s.paid)
    pay_ts = s.start[sess] + pay_at[sess] * STEP + rng.integers(0, STEP * 2 // 3, len(sess))
    rows.add(
        CODE["Payment Info Entered"],
        pay_ts,
        sess=sess,
        cust=s.cust[sess],
        anon=s.second_device[sess],
        ident=pay_at[sess] >= ident_pos[sess],
        platform=s.platform[sess],
        traffic=s.traffic[sess],
        order=s.order[sess],
    )
    payment_at = np.full(n, -1, dtype=np.int64)
    payment_at[sess] = pay_ts
    sess = np.flatnonzero(s.completed)
    completed_ts = (
        s.start[sess] + (pay_at[sess] + 1) * STEP + rng.integers(0, STEP * 2 // 3, len(sess))
    )
    rows.add(
        CODE["Order Completed"],
        completed_ts,
        sess=sess,
        cust=s.cust[sess],
        anon=s.second_device[sess],
        ident=pay_at[sess] + 1 >= ident_pos[sess],
        platform=s.platform[sess],
        traffic=s.traffic[sess],
        order=s.order[sess],
    )
    completed_at = np.full(n, -1, dtype=np.int64)
    completed_at[sess] = completed_ts
    sess = np.flatnonzero(s.failed)
    visit(
        CODE["Payment Failed"],
        sess,
        pay_at[sess] + 1,
        order=s.order[sess],
        aux=s.outage_failure[sess],
    )
    sess = np.flatnonzero(s.fail_support)
    visit(
        CODE["Support Contacted"],
        sess,
        pay_at[sess] + 2,
        order=s.order[sess],
        aux=1 * 3 + rng.integers(0, 3, len(sess)),
    )
    sess = np.flatnonzero(s.identify == 3)
    visit(IDENTIFY, sess, after_add[sess])

    # Messages that bring a visit: opened some minutes before, link clicked just before.
    for traffic, opened, clicked in (
        (TRAFFIC_EMAIL, "Email Opened", "Email Link Clicked"),
        (TRAFFIC_WHATSAPP, "WhatsApp Message Read", "WhatsApp Link Clicked"),
    ):
        sess = np.flatnonzero((s.traffic == traffic) & (s.round > 0) & s.logged_in)
        common = {
            "sess": -1,
            "cust": s.cust[sess],
            "platform": s.platform[sess],
            "traffic": traffic,
        }
        opened_at = s.start[sess] - rng.integers(3 * MINUTE, 3 * HOUR, len(sess))
        rows.add(CODE[opened], opened_at, **common)
        clicked_at = s.start[sess] - rng.integers(5 * SECOND, 60 * SECOND, len(sess))
        rows.add(CODE[clicked], clicked_at, **common)
    # Emails opened without a visit.
    sess = np.flatnonzero(s.email_open)
    rows.add(
        CODE["Email Opened"],
        s.start[sess] - rng.integers(4 * HOUR, 20 * HOUR, len(sess)),
        cust=s.cust[sess],
        platform=s.platform[sess],
        traffic=TRAFFIC_EMAIL,
    )

    # After the order (server-side).
    o = orders
    for code, at in (
        (CODE["Order Delivered"], o.delivered_at),
        (CODE["Order Refunded"], o.refund_at),
        (CODE["Product Reviewed"], o.review_at),
    ):
        which = np.flatnonzero(at >= 0)
        product = o.item_product[o.item_offsets[which]]
        rows.add(code, at[which], cust=o.cust[which], order=which, product=product)
    which = np.flatnonzero(o.late_support_at >= 0)
    rows.add(
        CODE["Support Contacted"],
        o.late_support_at[which],
        cust=o.cust[which],
        order=which,
        aux=2 * 3 + rng.integers(0, 3, len(which)),
    )

    frame = rows.sorted_frame(start_us, end_us, rng)
    return Timeline(frame=frame, payment_at=payment_at, completed_at=completed_at)
