"""PostgreSQL: workers share the queue, but one customer's events are applied in order."""

from __future__ import annotations

import pytest
from runtime_support import T0, Clock, add_profiles, count, series, track
from sqlalchemy import select

from wayline.journeys.runtime import JourneyRuntime
from wayline.storage.db import Database
from wayline.storage.journey_models import InputRow, InstanceRow


@pytest.mark.postgres
def test_a_later_event_waits_while_another_worker_holds_an_earlier_one(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.ensure_default_workspace()
    clock = Clock()
    runtime = JourneyRuntime(db, clock=clock)
    runtime.catalog.publish("default", series(delay="1h"))
    add_profiles(db, ["u1", "u2"])
    db.accept("default", [track("u1", "Signed Up", T0)], T0)
    db.accept("default", [track("u1", "Order Completed", T0), track("u2", "Signed Up", T0)], T0)
    with db.engine.connect() as other:
        # Another worker has claimed u1's first event and not committed yet.
        held = other.execute(
            select(InputRow.id).order_by(InputRow.id).limit(1).with_for_update(skip_locked=True)
        ).scalar_one()
        assert runtime.advancer.advance_inputs() == 1  # u2's event only
        assert count(db, InputRow) == 2  # u1's events wait, in order
        assert count(db, InstanceRow, InstanceRow.person_id == "u1") == 0
        other.rollback()  # that worker died: its claim is released
    assert held
    runtime.drain()
    assert count(db, InputRow) == 0
    with db.read() as conn:
        status = conn.scalar(select(InstanceRow.status).where(InstanceRow.person_id == "u1"))
    assert status == "converted"  # entered, then converted: the order was kept
    db.close()


@pytest.mark.postgres
def test_two_runtimes_share_the_work_without_doing_it_twice(postgres_url: str) -> None:
    import threading

    db = Database(postgres_url)
    db.ensure_default_workspace()
    clock = Clock()
    first = JourneyRuntime(db, clock=clock, batch_size=50)
    second = JourneyRuntime(db, clock=clock, batch_size=50)
    first.catalog.publish("default", series(delay="1h", goal=False))
    people = [f"p{i}" for i in range(600)]
    add_profiles(db, people)
    db.accept("default", [track(p, "Signed Up", T0) for p in people], T0)
    threads = [threading.Thread(target=r.drain) for r in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.advance(hours=2)
    threads = [threading.Thread(target=r.drain) for r in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from runtime_support import logged_messages

    sent = logged_messages(db)
    assert len(sent) == len(set(sent)) == 1200
    assert count(db, InstanceRow, InstanceRow.status == "completed") == 600
    db.close()
