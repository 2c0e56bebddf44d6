"""One runtime process: the advancer and the deliverer, round after round, until stopped.

``wayline serve`` runs a :class:`JourneyRuntime` in a thread next to the mover (SQLite, one
process); ``wayline worker`` runs one per process against PostgreSQL, as many processes as the
load needs — they share the queues through ``FOR UPDATE SKIP LOCKED`` and need no coordinator.
Each round does a batch of each kind of work (events, due timers, outbox); when a round finds
nothing it sleeps ``idle_seconds`` (a short poll: the database is the only coordinator, so a
worker can be killed at any time and another picks up its work).

In :meth:`JourneyRuntime.run_forever` the deliverer does not poll at that pace: the advancer
wakes it when a batch leaves sends in the outbox, and between wake-ups its polls back off to
``idle_max_seconds``. They only look for what no wake-up announces (a send deferred by quiet
hours or a cap, a retry, the leftovers of a killed worker). Polling every 10 ms while the
advancer was busy cost a PostgreSQL worker 13 % of its transitions (6,900 against 7,900 a
second, measured): each empty claim is a transaction, a round trip and a turn of the GIL taken
from the advancer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from wayline.journeys.policies import DEFAULT_POLICY, SendPolicy
from wayline.journeys.runtime.advance import Advancer, EventHistory
from wayline.journeys.runtime.catalog import JourneyCatalog
from wayline.journeys.runtime.channels import ChannelRegistry
from wayline.journeys.runtime.collector import tune_for_runtime
from wayline.journeys.runtime.deliver import Deliverer, Renderer
from wayline.storage.db import Database

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RoundResult:
    inputs: int
    timers: int
    deliveries: int

    @property
    def busy(self) -> bool:
        return bool(self.inputs or self.timers or self.deliveries)


class JourneyRuntime:
    """The durable journey runtime of one process (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        channels: ChannelRegistry | None = None,
        policy: SendPolicy = DEFAULT_POLICY,
        policy_for: Callable[[str], SendPolicy | None] | None = None,
        renderer: Renderer | None = None,
        clock: Callable[[], datetime] = _utcnow,
        batch_size: int = 500,
        lease: timedelta = timedelta(seconds=60),
        history: EventHistory | None = None,
        idle_seconds: float = 0.05,
        idle_max_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.catalog = JourneyCatalog(db, clock=clock)
        registry = channels or ChannelRegistry()

        def deliverer() -> Deliverer:
            return Deliverer(
                db,
                self.catalog,
                registry,
                policy=policy,
                policy_for=policy_for,
                renderer=renderer,
                clock=clock,
                batch_size=batch_size,
                lease=lease,
            )

        self.deliverer = deliverer()
        self._outbox = threading.Event()  # set when sends wait in the outbox
        # Sends that need nothing outside the database are delivered with the transition that
        # decided them (``Deliverer.settle``), by a deliverer of the advancer's own: the two
        # run in different threads (``run_forever``) and keep per-batch caches.
        self.advancer = Advancer(
            db,
            self.catalog,
            clock=clock,
            batch_size=batch_size,
            history=history,
            settle=deliverer().settle,
            queued=self._outbox.set,
        )
        self.idle_seconds = idle_seconds
        self.idle_max_seconds = idle_max_seconds

    def run_round(self) -> RoundResult:
        """One batch of each kind of work."""
        inputs = self.advancer.advance_inputs()
        timers = self.advancer.advance_timers()
        deliveries = self.deliverer.deliver()
        return RoundResult(inputs, timers, deliveries)

    def drain(self, max_rounds: int = 1_000_000) -> int:
        """Run rounds until one finds nothing to do; returns the rounds run (tests, tools)."""
        for n in range(1, max_rounds + 1):
            if not self.run_round().busy:
                return n
        return max_rounds

    def run_forever(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set: the deliverer in a thread of its own, so that sends (and
        their database round trips) overlap with advancing customers, woken by the advancer
        (module docstring); an error in a round is logged and the round retried. The process's
        garbage collector is set for a long run (:mod:`wayline.journeys.runtime.collector`)."""
        tune_for_runtime()
        deliverer = threading.Thread(
            target=self._loop,
            args=(stop, lambda: self.deliverer.deliver() > 0, self._outbox),
            name="wayline-journeys-deliver",
            daemon=True,
        )
        deliverer.start()
        try:
            self._loop(
                stop,
                lambda: bool(self.advancer.advance_inputs() + self.advancer.advance_timers()),
            )
        finally:
            self._outbox.set()  # the deliverer sees ``stop`` now, not at its next poll
            deliverer.join()

    def _loop(
        self, stop: threading.Event, work: Callable[[], bool], wake: threading.Event | None = None
    ) -> None:
        """Run ``work`` until ``stop``, waiting ``idle_seconds`` after a round that found
        nothing; with ``wake``, each such wait is twice the last (up to ``idle_max_seconds``)
        and ends when ``wake`` is set. After a round that failed it waits 0.1 s, then twice as
        long each time (up to 5 s), wake-ups or not."""
        wait = self.idle_seconds
        while not stop.is_set():
            if wake is not None:
                wake.clear()  # before the round: a wake-up during it is not lost
            try:
                busy = work()
            except Exception:
                log.exception("journey runtime round failed; retrying")
                wait = min(max(wait * 2, 0.1), 5.0)
                stop.wait(wait)  # not cut short by wake-ups: a failing round backs off
                continue
            if busy:
                wait = self.idle_seconds
            elif wake is None:
                wait = self.idle_seconds  # a round that worked ends an error's backoff
                stop.wait(wait)
            else:
                wake.wait(wait)
                wait = min(wait * 2, self.idle_max_seconds)

    def start_thread(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.run_forever, args=(stop,), name="wayline-journeys", daemon=True
        )
        thread.start()
        return thread


def wait_idle(runtime: JourneyRuntime, *, timeout: float = 30.0) -> None:
    """Run rounds in this thread until there is nothing left to do now (tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not runtime.run_round().busy:
            return
    raise TimeoutError("the journey runtime still had work after the timeout")
