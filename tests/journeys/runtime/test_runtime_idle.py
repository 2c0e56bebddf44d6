"""The runtime with little to do: no write lock taken for nothing, a deliverer woken by the
advancer and polling less and less while idle."""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from runtime_support import T0, Clock, Provider, add_profiles, series, track

from wayline.journeys.runtime import JourneyRuntime
from wayline.journeys.runtime.channels import ChannelRegistry
from wayline.storage.db import Database


def test_an_idle_advancer_takes_no_write_lock_on_sqlite(tmp_path: Path) -> None:
    # PostgreSQL claims with SKIP LOCKED, which holds up nobody: it does not look first.
    db = Database(f"sqlite:///{tmp_path / 'ops.sqlite3'}", clock=lambda: T0)
    db.ensure_default_workspace()
    runtime = JourneyRuntime(db, clock=Clock(), idle_seconds=0.0)
    runtime.catalog.publish("default", series(delay="1h"))
    add_profiles(db, ["u1"])
    writes = 0
    write = db.write

    def counted() -> AbstractContextManager[Any]:
        nonlocal writes
        writes += 1
        return write()

    db.write = counted  # type: ignore[method-assign]
    assert (runtime.advancer.advance_inputs(), runtime.advancer.advance_timers()) == (0, 0)
    assert writes == 0
    db.accept("default", [track("u1", "Signed Up", T0)], T0)
    writes = 0
    assert runtime.advancer.advance_inputs() == 1
    assert runtime.advancer.advance_timers() == 0  # the delay's timer is not due
    assert writes == 1
    db.close()


def test_the_advancer_wakes_the_deliverer_which_backs_off_while_idle(db: Database) -> None:
    provider = Provider()
    runtime = JourneyRuntime(
        db, clock=Clock(), channels=ChannelRegistry({"email": provider}),
        idle_seconds=0.01, idle_max_seconds=60.0,
    )  # fmt: skip
    runtime.catalog.publish("default", series(sends=1, goal=False))
    add_profiles(db, ["u1"])
    polls: list[float] = []
    deliver = runtime.deliverer.deliver

    def counted() -> int:
        polls.append(time.monotonic())
        return deliver()

    runtime.deliverer.deliver = counted  # type: ignore[method-assign]
    stop = threading.Event()
    thread = runtime.start_thread(stop)
    try:
        time.sleep(2.0)
        # Waits of 10 ms, 20 ms, 40 ms… : 8 or 9 polls in 2 s, not the 200 of a 10 ms poll.
        assert 5 <= len(polls) <= 12
        # The deliverer now waits 1.3 or 2.6 s before its next poll; the advancer (polling
        # every 10 ms) takes the event and wakes it.
        accepted = time.monotonic()
        db.accept("default", [track("u1", "Signed Up", T0)], T0)
        deadline = accepted + 10
        while not provider.sent_at and time.monotonic() < deadline:
            time.sleep(0.01)
        assert provider.sent_at, "the send was not delivered"
        assert provider.sent_at[0] - accepted < 1.0
    finally:
        stopped = time.monotonic()
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    # The deliverer is woken to stop, not left to finish a wait of up to a minute.
    assert time.monotonic() - stopped < 2.0


def test_a_failing_deliverer_backs_off_however_often_it_is_woken(db: Database) -> None:
    runtime = JourneyRuntime(
        db, clock=Clock(), channels=ChannelRegistry({"email": Provider()}),
        idle_seconds=0.01, idle_max_seconds=60.0,
    )  # fmt: skip
    runtime.catalog.publish("default", series(sends=1, goal=False))
    people = [f"u{i}" for i in range(50)]
    add_profiles(db, people)
    failures = 0

    def broken() -> int:
        nonlocal failures
        failures += 1
        raise RuntimeError("the outbox is unreachable")

    runtime.deliverer.deliver = broken  # type: ignore[method-assign]
    stop = threading.Event()
    thread = runtime.start_thread(stop)
    try:
        for person in people:  # ~50 batches leaving a send each: ~50 wake-ups in a second
            db.accept("default", [track(person, "Signed Up", T0)], T0)
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=10)
    # Retried after 0.1, 0.2, 0.4, 0.8 s…: a handful of attempts, not one per wake-up.
    assert 1 <= failures <= 6
