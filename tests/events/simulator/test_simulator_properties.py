"""Invariants that hold for any store: any seed, size, period and set of problems (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wayline.events.simulator import ProblemKind, StoreConfig, simulate_store

configs = st.builds(
    StoreConfig,
    seed=st.integers(0, 2**32 - 1),
    customers=st.integers(1, 150),
    start=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    days=st.integers(7, 120),
    problems=st.frozensets(st.sampled_from(list(ProblemKind))),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_any_store_is_consistent(config: StoreConfig) -> None:
    sim = simulate_store(config)
    t = sim.events
    assert t.num_rows == sim.num_events == sim.facts.events > 0
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("events", t)
    row = con.execute(
        """SELECT min(timestamp), max(timestamp), count(DISTINCT message_id) = count(*),
                  count(*) FILTER (WHERE event = 'Order Completed'),
                  coalesce(sum(revenue), 0),
                  count(DISTINCT coalesce(user_id, anonymous_id))
           FROM events"""
    ).fetchone()
    assert row is not None
    first, last, unique_ids, orders, revenue, _ = row
    assert config.start <= first and last < config.start + timedelta(days=config.days)
    assert unique_ids
    assert orders == sim.facts.orders and revenue == sim.facts.revenue
    # A visit has one device, channel and country, and its steps come in funnel order.
    bad = con.execute(
        """WITH v AS (
             SELECT session_id,
                    count(DISTINCT device_type) AS devices, count(DISTINCT channel) AS channels,
                    count(DISTINCT country) AS countries,
                    min(timestamp) FILTER (WHERE event = 'Product Added') AS added,
                    min(timestamp) FILTER (WHERE event = 'Checkout Started') AS checkout,
                    min(timestamp) FILTER (WHERE event = 'Payment Info Entered') AS paid,
                    min(timestamp) FILTER (WHERE event = 'Order Completed') AS ordered
             FROM events WHERE session_id IS NOT NULL GROUP BY session_id)
           SELECT count(*) FROM v
           WHERE devices <> 1 OR channels <> 1 OR countries <> 1
              OR (ordered IS NOT NULL AND NOT (paid < ordered))
              OR (paid IS NOT NULL AND NOT (checkout < paid))
              OR (checkout IS NOT NULL AND NOT (added < checkout))"""
    ).fetchone()
    assert bad == (0,)
    # Rows are in time order.
    ts = t["timestamp"]
    assert pc.all(pc.less_equal(ts.slice(0, len(ts) - 1), ts.slice(1))).as_py() is not False
    assert [p.kind for p in sim.ground_truth] == [k for k in ProblemKind if k in config.problems]
    for m in sim.measurements.values():
        for rate in (m.affected, m.baseline):
            assert 0 <= rate.numerator <= rate.denominator
