"""``simulate_store``: a config in, a whole sample store's events and ground truth out. Pure.

The steps, each its own module: draw the fixed world (:mod:`.catalogue`), let customers act
round by round (:mod:`.behaviour`), lay their visits and orders out as timed events
(:mod:`.timeline`), turn those into Arrow rows (:mod:`.materialize`) and measure each problem's
metric (:mod:`.truth`). One seeded generator drives every draw, in a fixed order, so a config
always gives the same store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property

import numpy as np
import pyarrow as pa

from wayline.events.simulator.behaviour import (
    SECOND,
    Customers,
    Orders,
    Sessions,
    make_customers,
    outage_window,
    simulate_behaviour,
)
from wayline.events.simulator.catalogue import (
    CATEGORIES,
    COUNTRIES,
    PERSONAS,
    PLATFORMS,
    TRAFFIC,
    Catalogue,
    make_catalogue,
)
from wayline.events.simulator.config import ProblemKind, StoreConfig
from wayline.events.simulator.materialize import CHUNK_ROWS, Texts, materialize, materialize_chunks
from wayline.events.simulator.timeline import EventFrame, build_timeline
from wayline.events.simulator.truth import (
    SPECS,
    InjectedProblem,
    Measurement,
    injected_factor,
    lost_units,
    measure,
)


@dataclass(frozen=True)
class StoreFacts:
    """Totals of the simulated store, for summaries and checks."""

    customers: int
    """People who visited (each is one person once identities are resolved)."""
    identified_customers: int
    sessions: int
    orders: int
    """Completed orders."""
    revenue: Decimal
    events: int


@dataclass(frozen=True, eq=False)
class SimulatedStore:
    """A generated store: its events, the ground truth of its problems, and its world.

    The events are kept as compact numeric columns and turned into rows when asked for:
    ``events`` builds (once) the whole Arrow table; ``batches()`` yields it chunk by chunk, so
    that a 10 M-event store can be loaded without holding all of its text in memory.
    """

    config: StoreConfig
    ground_truth: tuple[InjectedProblem, ...]
    """The injected problems (empty for a clean store)."""
    measurements: dict[ProblemKind, Measurement]
    """Every problem's metric, injected or not: in a clean store, affected ≈ baseline."""
    products: pa.Table
    customers: pa.Table
    facts: StoreFacts
    _frame: EventFrame = field(repr=False)
    _texts: Texts = field(repr=False)

    @cached_property
    def events(self) -> pa.Table:
        """Every row, of ``EVENT_ARROW_SCHEMA``, sorted by timestamp."""
        return materialize(self._texts, self._frame, self.config.workspace_id, self.config.seed)

    def batches(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[pa.Table]:
        """The same rows as ``events``, in order, as tables of at most ``chunk_rows`` rows."""
        return materialize_chunks(
            self._texts, self._frame, self.config.workspace_id, self.config.seed, chunk_rows
        )

    @property
    def num_events(self) -> int:
        return len(self._frame)

    def problem(self, kind: ProblemKind) -> InjectedProblem:
        """The injected problem of that kind (``KeyError`` if not injected)."""
        return {p.kind: p for p in self.ground_truth}[kind]


def _products_table(catalogue: Catalogue) -> pa.Table:
    c = catalogue
    return pa.table(
        {
            "product_id": pa.array(c.product_id),
            "sku": pa.array(c.sku),
            "name": pa.array(c.name),
            "category": pa.array([CATEGORIES[int(i)][0] for i in c.category]),
            "price": pa.array([Decimal(int(p)) / 100 for p in c.price_cents], pa.decimal128(18, 2)),
            "has_reviews": pa.array(c.has_reviews),
            "review_count": pa.array(c.review_count),
            "rating": pa.array(
                [
                    float(r) / 10 if h else None
                    for r, h in zip(c.rating_tenths, c.has_reviews, strict=True)
                ],
                pa.float64(),
            ),
            "description_length": pa.array(c.description_length),
        }
    )


def _customers_table(customers: Customers, texts: Texts) -> pa.Table:
    cust = customers
    return pa.table(
        {
            "user_id": texts.user_id,
            "anonymous_id": texts.anonymous_ids.slice(0, texts.customers),
            "second_anonymous_id": texts.anonymous_ids.slice(texts.customers),
            "persona": pa.array([p.name for p in PERSONAS]).take(pa.array(cust.persona)),
            "device_type": pa.array([p.device_type for p in PLATFORMS]).take(
                pa.array(cust.platform)
            ),
            "country": pa.array([c for c, _ in COUNTRIES]).take(pa.array(cust.country)),
            "acquisition_channel": pa.array([t.channel for t in TRAFFIC]).take(
                pa.array(cust.traffic)
            ),
            "identified": pa.array(cust.identified),
        }
    )


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / SECOND, tz=UTC)


def simulate_store(config: StoreConfig) -> SimulatedStore:
    """Generate the sample store described by ``config`` (deterministic per config)."""
    rng = np.random.default_rng(config.seed)
    catalogue = make_catalogue(rng)
    customers = make_customers(config, rng)
    sessions, orders = simulate_behaviour(config, catalogue, customers, rng)
    timeline = build_timeline(config, catalogue, sessions, orders, rng)
    texts = Texts(catalogue, customers, orders)
    window = outage_window(config)
    measurements = {
        kind: measure(
            kind,
            config,
            catalogue,
            customers.country,
            sessions,
            orders,
            timeline.payment_at,
            timeline.completed_at,
            (window.start, window.end),
        )
        for kind in ProblemKind
    }
    period_end = config.start + timedelta(days=config.days)
    truth = []
    for kind in ProblemKind:  # a fixed order, whatever the set's
        if kind not in config.problems:
            continue
        spec = SPECS[kind]
        if kind is ProblemKind.CHECKOUT_LOOP:  # the country is a setting
            country = config.rates.loop_country
            spec = replace(
                spec,
                segment=(("country", country),),
                baseline_segment=(("country", f"not {country}"),),
            )
        outage = kind is ProblemKind.PAYMENT_OUTAGE
        if outage:  # the window, as an ISO 8601 interval
            interval = f"{_utc(window.start).isoformat()}/{_utc(window.end).isoformat()}"
            spec = replace(
                spec,
                segment=(("timestamp", interval),),
                baseline_segment=(("timestamp", f"not {interval}"),),
            )
        truth.append(
            InjectedProblem(
                kind=kind,
                title=spec.title,
                segment=spec.segment,
                baseline_segment=spec.baseline_segment,
                steps=spec.steps,
                start=_utc(window.start) if outage else config.start,
                end=_utc(window.end) if outage else period_end,
                unit=spec.unit,
                metric=spec.metric,
                injected_factor=injected_factor(kind, config),
                measurement=measurements[kind],
                lost=lost_units(kind, sessions),
            )
        )
    facts = _facts(customers, sessions, orders, len(timeline.frame))
    return SimulatedStore(
        config=config,
        ground_truth=tuple(truth),
        measurements=measurements,
        products=_products_table(catalogue),
        customers=_customers_table(customers, texts),
        facts=facts,
        _frame=timeline.frame,
        _texts=texts,
    )


def _facts(customers: Customers, sessions: Sessions, orders: Orders, events: int) -> StoreFacts:
    done = orders.completed
    cents = int(orders.value_cents[done].sum())
    return StoreFacts(
        customers=len(customers.persona),
        identified_customers=int(customers.identified.sum()),
        sessions=len(sessions),
        orders=int(done.sum()),
        revenue=Decimal(cents) / 100,
        events=events,
    )
