"""Each injected problem is really in the events, measured with plain SQL on DuckDB; a clean
store shows none of them; the ground truth says exactly what the SQL finds.

These protect the journey-map detectors built on the sample store: if a change to the simulator
weakened a problem or leaked one into the clean store, these fail.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest

from wayline.events.simulator import ProblemKind, Rate, SimulatedStore
from wayline.storage.eventstore import EventStore

# Each query returns rows (is_affected, numerator, denominator); is_affected NULL = neither
# segment. The same metrics as wayline.events.simulator.truth.SPECS (docs/sample-store.md).
SESSIONS = """
    SELECT session_id, any_value(device_type) AS device, any_value(channel) AS channel,
           any_value(country) AS country,
           bool_or(event = 'Checkout Started') AS checkout,
           bool_or(event = 'Payment Info Entered') AS paid,
           bool_or(event = 'Checkout Error') AS error,
           bool_or(event = 'Order Completed') AS bought
    FROM events WHERE session_id IS NOT NULL GROUP BY session_id
"""
METRIC_SQL: dict[ProblemKind, str] = {
    ProblemKind.MOBILE_PAYMENT_DROPOFF: f"""
        WITH s AS ({SESSIONS})
        SELECT CASE device WHEN 'mobile' THEN TRUE WHEN 'desktop' THEN FALSE END,
               count(*) FILTER (WHERE checkout AND paid), count(*) FILTER (WHERE checkout)
        FROM s GROUP BY 1""",
    ProblemKind.PAYMENT_OUTAGE: """
        WITH p AS (SELECT session_id, min(timestamp) AS paid_at FROM events
                   WHERE event = 'Payment Info Entered' GROUP BY session_id),
             c AS (SELECT DISTINCT session_id FROM events WHERE event = 'Order Completed')
        SELECT paid_at >= $start AND paid_at < $end, count(c.session_id), count(*)
        FROM p LEFT JOIN c USING (session_id) GROUP BY 1""",
    ProblemKind.MISSING_REVIEWS: """
        WITH v AS (SELECT DISTINCT session_id, properties->>'product_id' AS pid,
                          NOT (properties->>'has_reviews')::BOOLEAN AS no_reviews
                   FROM events WHERE event = 'Product Viewed'),
             a AS (SELECT DISTINCT session_id, properties->>'product_id' AS pid
                   FROM events WHERE event = 'Product Added')
        SELECT no_reviews, count(a.pid), count(*)
        FROM v LEFT JOIN a USING (session_id, pid) GROUP BY 1""",
    ProblemKind.LATE_DELIVERY_CHURN: """
        WITH o AS (SELECT user_id, properties->>'order_id' AS oid, timestamp,
                          row_number() OVER (PARTITION BY user_id ORDER BY timestamp) AS n,
                          max(timestamp) OVER (PARTITION BY user_id) AS last_order
                   FROM events WHERE event = 'Order Completed'),
             d AS (SELECT properties->>'order_id' AS oid, timestamp AS delivered,
                          (properties->>'late')::BOOLEAN AS late
                   FROM events WHERE event = 'Order Delivered')
        SELECT d.late, count(*) FILTER (WHERE last_order > delivered), count(*)
        FROM o JOIN d USING (oid) WHERE n = 1 GROUP BY 1""",
    ProblemKind.SOCIAL_NO_BUY: f"""
        WITH s AS ({SESSIONS})
        SELECT channel = 'social', count(*) FILTER (WHERE bought), count(*) FROM s GROUP BY 1""",
    ProblemKind.CHECKOUT_LOOP: f"""
        WITH s AS ({SESSIONS})
        SELECT country = 'FR', count(*) FILTER (WHERE checkout AND error),
               count(*) FILTER (WHERE checkout)
        FROM s GROUP BY 1""",
}


def sql_rates(db: EventStore, sim: SimulatedStore, kind: ProblemKind) -> tuple[Rate, Rate]:
    """(affected, baseline) measured by SQL."""
    sql = METRIC_SQL[kind]
    params: dict[str, Any] = {}
    if kind is ProblemKind.PAYMENT_OUTAGE:
        window = _outage(sim)
        params = {"start": window[0], "end": window[1]}
    rows = db.con.execute(sql, params).fetchall() if params else db.con.execute(sql).fetchall()
    by_flag = {flag: Rate(int(num), int(den)) for flag, num, den in rows if flag is not None}
    return by_flag.get(True, Rate(0, 0)), by_flag.get(False, Rate(0, 0))


def _outage(sim: SimulatedStore) -> tuple[datetime, datetime]:
    from wayline.events.simulator.behaviour import SECOND, outage_window

    w = outage_window(sim.config)
    return (
        datetime.fromtimestamp(w.start / SECOND, tz=sim.config.start.tzinfo),
        datetime.fromtimestamp(w.end / SECOND, tz=sim.config.start.tzinfo),
    )


def z_score(a: Rate, b: Rate) -> float:
    """Two-proportion z statistic (pooled)."""
    pooled = (a.numerator + b.numerator) / (a.denominator + b.denominator)
    se = math.sqrt(pooled * (1 - pooled) * (1 / a.denominator + 1 / b.denominator))
    return (a.value - b.value) / se if se else 0.0


@pytest.mark.parametrize("kind", list(ProblemKind))
def test_ground_truth_is_what_sql_measures(
    kind: ProblemKind, problem_store: SimulatedStore, problem_db: EventStore
) -> None:
    affected, baseline = sql_rates(problem_db, problem_store, kind)
    truth = problem_store.problem(kind)
    assert truth.measurement.affected == affected
    assert truth.measurement.baseline == baseline
    assert affected.denominator >= 40 and baseline.denominator >= 200


@pytest.mark.parametrize("kind", list(ProblemKind))
def test_clean_store_measures_match_sql_too(
    kind: ProblemKind, clean_store: SimulatedStore, clean_db: EventStore
) -> None:
    affected, baseline = sql_rates(clean_db, clean_store, kind)
    assert clean_store.measurements[kind].affected == affected
    assert clean_store.measurements[kind].baseline == baseline


# How far below (or above, for the loop) the baseline the affected segment must be.
STRONG = {
    ProblemKind.MOBILE_PAYMENT_DROPOFF: (0.25, 0.6),
    ProblemKind.PAYMENT_OUTAGE: (0.1, 0.6),
    ProblemKind.MISSING_REVIEWS: (0.2, 0.55),
    ProblemKind.LATE_DELIVERY_CHURN: (0.0, 0.45),
    ProblemKind.SOCIAL_NO_BUY: (0.05, 0.3),
    ProblemKind.CHECKOUT_LOOP: (5.0, 30.0),
}


@pytest.mark.parametrize("kind", list(ProblemKind))
def test_each_problem_is_strong_and_significant(
    kind: ProblemKind, problem_store: SimulatedStore
) -> None:
    m = problem_store.problem(kind).measurement
    low, high = STRONG[kind]
    assert low <= m.ratio <= high, (kind, m)
    assert abs(z_score(m.affected, m.baseline)) > 5, (kind, m)


@pytest.mark.parametrize("kind", list(ProblemKind))
def test_clean_store_has_no_problem(kind: ProblemKind, clean_store: SimulatedStore) -> None:
    m = clean_store.measurements[kind]
    assert m.affected.denominator >= 40
    assert abs(z_score(m.affected, m.baseline)) < 4, (kind, m)
    assert clean_store.ground_truth == ()


def test_problems_switch_one_by_one() -> None:
    from wayline.events.simulator import StoreConfig, simulate_store

    sim = simulate_store(
        StoreConfig(seed=5, customers=6000, problems=frozenset({ProblemKind.SOCIAL_NO_BUY}))
    )
    assert [p.kind for p in sim.ground_truth] == [ProblemKind.SOCIAL_NO_BUY]
    assert sim.measurements[ProblemKind.SOCIAL_NO_BUY].ratio < 0.3
    for kind in set(ProblemKind) - {ProblemKind.SOCIAL_NO_BUY}:
        m = sim.measurements[kind]
        assert abs(z_score(m.affected, m.baseline)) < 4, (kind, m)


def test_ground_truth_describes_each_problem(problem_store: SimulatedStore) -> None:
    cfg = problem_store.config
    assert [p.kind for p in problem_store.ground_truth] == list(ProblemKind)
    for p in problem_store.ground_truth:
        assert p.segment and p.baseline_segment and p.metric and p.title
        assert cfg.start <= p.start < p.end
        assert p.affected_customers > 0
        assert 0 < p.lost <= p.measurement.affected.denominator
    mobile = problem_store.problem(ProblemKind.MOBILE_PAYMENT_DROPOFF)
    assert mobile.segment == (("device_type", "mobile"),)
    assert mobile.steps == ("Checkout Started", "Payment Info Entered")
    assert mobile.injected_factor == cfg.rates.mobile_pay_factor
    outage = problem_store.problem(ProblemKind.PAYMENT_OUTAGE)
    assert (outage.end - outage.start).days == 7


def test_outage_errors_are_in_the_window(
    problem_store: SimulatedStore, problem_db: EventStore
) -> None:
    outage = problem_store.problem(ProblemKind.PAYMENT_OUTAGE)
    row = problem_db.con.execute(
        """SELECT count(*) FILTER (WHERE timestamp >= ? AND timestamp < ?), count(*)
           FROM events WHERE event = 'Payment Failed'
           AND properties->>'error' = 'gateway_timeout'""",
        [outage.start, outage.end],
    ).fetchone()
    assert row is not None and row[1] > 10 and row[0] == row[1]
    support = problem_db.con.execute(
        """SELECT count(*) FROM events WHERE event = 'Support Contacted'
           AND properties->>'topic' = 'payment' AND timestamp >= ? AND timestamp < ?""",
        [outage.start, outage.end],
    ).fetchone()
    assert support is not None and support[0] > 0


def test_checkout_loops_go_back_to_the_cart(problem_db: EventStore) -> None:
    # Every Checkout Error is followed, in its visit, by a Cart Viewed.
    row = problem_db.con.execute(
        """WITH e AS (SELECT session_id, timestamp,
                             lead(event) OVER (PARTITION BY session_id ORDER BY timestamp) AS nxt
                      FROM events WHERE session_id IS NOT NULL)
           SELECT count(*), count(*) FILTER (WHERE nxt = 'Cart Viewed')
           FROM e JOIN events USING (session_id, timestamp)
           WHERE events.event = 'Checkout Error'"""
    ).fetchone()
    assert row is not None and row[0] > 50 and row[0] == row[1]


def test_clean_store_customers_convert_alike_on_every_device(
    clean_store: SimulatedStore, clean_db: EventStore
) -> None:
    # Per customer too (not only per step): personas that favour a device must not make it
    # look better or worse.
    con = clean_db.con
    con.register("customers", clean_store.customers)
    rows = con.execute(
        """SELECT c.device_type, count(DISTINCT e.user_id), count(*)
           FROM customers c LEFT JOIN (SELECT DISTINCT user_id FROM events
                                       WHERE event = 'Order Completed') e USING (user_id)
           GROUP BY 1"""
    ).fetchall()
    con.unregister("customers")
    rates = {device: Rate(int(b), int(n)) for device, b, n in rows}
    assert abs(z_score(rates["mobile"], rates["desktop"])) < 4, rates
