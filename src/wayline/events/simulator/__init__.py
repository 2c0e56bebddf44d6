"""The sample-store simulator: a realistic online store's events, with known problems in them.

``simulate_store(StoreConfig(...))`` generates a store — a product catalogue, customers with
personas, devices, countries and acquisition channels, their visits (``$page`` → ``Product
Viewed`` → ``Product Added`` → ``Checkout Started`` → ``Payment Info Entered`` → ``Order
Completed``, Segment e-commerce names), anonymous browsing before an ``$identify``, repeat
purchases over months, deliveries, refunds, reviews, support contacts, emails and WhatsApp
messages — as rows of :data:`wayline.events.schema.EVENT_ARROW_SCHEMA`. Problems can be injected
(:class:`ProblemKind`); each is recorded in ``ground_truth`` with its segment, steps, dates and
measured effect, so the journey-map detectors can be tested against what is really there.
A clean store (``problems=frozenset()``) has the same rates in every segment, within noise.

Generation is pure and vectorised (numpy, Arrow): ~1 M events in seconds. ``load_store`` is the
shell: it writes a store into an :class:`~wayline.storage.eventstore.EventStore`.

See ``docs/sample-store.md``.
"""

from wayline.events.simulator.config import ALL_PROBLEMS, ProblemKind, Rates, StoreConfig
from wayline.events.simulator.load import load_store
from wayline.events.simulator.store import SimulatedStore, StoreFacts, simulate_store
from wayline.events.simulator.truth import InjectedProblem, Measurement, ProblemSpec, Rate

__all__ = [
    "ALL_PROBLEMS",
    "InjectedProblem",
    "Measurement",
    "ProblemKind",
    "ProblemSpec",
    "Rate",
    "Rates",
    "SimulatedStore",
    "StoreConfig",
    "StoreFacts",
    "load_store",
    "simulate_store",
]
