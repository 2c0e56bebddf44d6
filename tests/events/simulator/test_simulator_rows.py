"""Simulated rows: deterministic, sized as asked, valid, what the tracking API would make."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from wayline.events.normalize import normalize
from wayline.events.schema import EVENT_ARROW_SCHEMA
from wayline.events.simulator import ProblemKind, SimulatedStore, StoreConfig, simulate_store
from wayline.storage.eventstore import EventStore


def test_same_seed_same_store_other_seed_other_store() -> None:
    cfg = StoreConfig(seed=3, customers=400)
    a, b = simulate_store(cfg), simulate_store(cfg)
    assert a.events.equals(b.events)
    assert a.ground_truth == b.ground_truth
    assert a.products.equals(b.products)
    c = simulate_store(StoreConfig(seed=4, customers=400))
    assert not a.events.equals(c.events)


def test_batches_are_the_events_in_order() -> None:
    sim = simulate_store(StoreConfig(seed=3, customers=300))
    batches = list(sim.batches(chunk_rows=1000))
    assert len(batches) == -(-sim.num_events // 1000) > 1
    assert pa.concat_tables(batches).equals(sim.events)


@pytest.mark.parametrize(("target", "tolerance"), [(1_000, 0.5), (100_000, 0.1)])
def test_for_events_gives_about_that_many(target: int, tolerance: float) -> None:
    # A 1 k store has ~50 customers: one loyal regular more or less shows.
    started = time.perf_counter()
    sim = simulate_store(StoreConfig.for_events(target, seed=1))
    assert (1 - tolerance) * target <= sim.events.num_rows <= (1 + tolerance) * target
    assert time.perf_counter() - started < 10


@pytest.mark.slow
def test_a_million_events_quickly() -> None:
    started = time.perf_counter()
    sim = simulate_store(StoreConfig.for_events(1_000_000, seed=2))
    rows = sum(batch.num_rows for batch in sim.batches())
    elapsed = time.perf_counter() - started
    assert 0.85e6 <= rows <= 1.15e6
    assert elapsed < 60  # ~5 s on an idle laptop core; generous for shared CI machines


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="customers"):
        StoreConfig(customers=0)
    with pytest.raises(ValueError, match="timezone"):
        StoreConfig(start=datetime(2026, 1, 1))  # naive: refused
    with pytest.raises(ValueError):
        StoreConfig(problems=frozenset({"no_such_problem"}))  # type: ignore[arg-type]
    cfg = StoreConfig(problems=frozenset({"social_no_buy"}))  # type: ignore[arg-type]
    assert cfg.problems == {ProblemKind.SOCIAL_NO_BUY}


def test_schema_order_period_and_workspace(problem_store: SimulatedStore) -> None:
    t = problem_store.events
    assert t.schema.equals(EVENT_ARROW_SCHEMA)
    ts = t["timestamp"]
    assert pc.all(pc.less_equal(ts.slice(0, len(ts) - 1), ts.slice(1))).as_py()
    cfg = problem_store.config
    assert pc.min(ts).as_py() >= cfg.start
    assert pc.max(ts).as_py() < cfg.start + timedelta(days=cfg.days)
    assert pc.all(pc.greater_equal(t["received_at"], ts)).as_py()
    assert set(t["workspace_id"].unique().to_pylist()) == {"default"}
    assert set(t["source"].unique().to_pylist()) == {"simulator"}
    assert problem_store.facts.events == t.num_rows


def test_every_row_is_valid(problem_db: EventStore) -> None:
    con = problem_db.con
    bad = con.execute(
        """SELECT
             count(*) FILTER (WHERE user_id IS NULL AND anonymous_id IS NULL),
             count(*) FILTER (WHERE person_id IS DISTINCT FROM coalesce(user_id, anonymous_id)),
             count(*) FILTER (WHERE (event = 'Order Completed') <> (revenue IS NOT NULL)),
             count(*) FILTER (WHERE revenue <= 0 OR (revenue IS NOT NULL AND currency <> 'EUR')),
             count(*) FILTER (WHERE (type = 'page') <> (page_path IS NOT NULL)),
             count(*) FILTER (WHERE type = 'track' AND event LIKE '$%'),
             count(*) FILTER (WHERE json_valid(properties) IS NOT TRUE
                                 OR json_valid(context) IS NOT TRUE
                                 OR json_valid(traits) IS NOT TRUE),
             count(*) - count(DISTINCT message_id)
           FROM events"""
    ).fetchone()
    assert bad == (0, 0, 0, 0, 0, 0, 0, 0)
    # Revenue is the sum of the order's lines, to the cent.
    mismatched = con.execute(
        """WITH lines AS (
             SELECT message_id, revenue,
                    unnest(CAST(properties->'products' AS JSON[])) AS item
             FROM events WHERE event = 'Order Completed')
           SELECT count(*) FROM (
             SELECT message_id, any_value(revenue) AS revenue,
                    sum(CAST(item->>'price' AS DECIMAL(18,2)) * CAST(item->>'quantity' AS INT)) AS s
             FROM lines GROUP BY message_id) WHERE revenue <> s"""
    ).fetchone()
    assert mismatched == (0,)
    revenue = con.execute("SELECT sum(revenue) FROM events").fetchone()
    assert revenue is not None and isinstance(revenue[0], Decimal)


def test_devices_channels_and_events(problem_db: EventStore) -> None:
    con = problem_db.con
    shares = dict(
        con.execute(
            """SELECT device_type, count(DISTINCT anonymous_id) / sum(count(DISTINCT anonymous_id))
               OVER () FROM events WHERE device_type IS NOT NULL AND anonymous_id IS NOT NULL
               GROUP BY 1"""
        ).fetchall()
    )
    assert 0.5 < shares["mobile"] < 0.7 and shares["desktop"] > 0.2 and shares["tablet"] > 0.03
    channels = {r[0] for r in con.execute("SELECT DISTINCT channel FROM events").fetchall()}
    assert {"ads", "search", "social", "email", "whatsapp", "direct", "referral"} <= channels
    names = {r[0] for r in con.execute("SELECT DISTINCT event FROM events").fetchall()}
    assert {
        "$page",
        "$identify",
        "Product Viewed",
        "Product Added",
        "Checkout Started",
        "Payment Info Entered",
        "Order Completed",
        "Order Refunded",
        "Product Reviewed",
        "Order Delivered",
        "Support Contacted",
        "Email Opened",
        "WhatsApp Message Read",
    } <= names
    personas = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT traits->>'persona' FROM events WHERE event = '$identify'"
        ).fetchall()
    }
    assert personas == {
        "bargain_hunter",
        "loyal_regular",
        "gift_buyer",
        "mobile_first_browser",
        "casual_visitor",
    }
    # Repeat purchases over months.
    repeat = con.execute(
        """SELECT count(*) FROM (SELECT user_id FROM events WHERE event = 'Order Completed'
           GROUP BY user_id HAVING max(timestamp) - min(timestamp) > INTERVAL 30 DAY)"""
    ).fetchone()
    assert repeat is not None and repeat[0] > 20


def test_products_have_review_and_description_facts(problem_store: SimulatedStore) -> None:
    products = problem_store.products
    assert products.num_rows >= 100
    no_reviews = pc.sum(pc.invert(products["has_reviews"])).as_py()
    assert 0.1 * products.num_rows < no_reviews < 0.4 * products.num_rows
    assert pc.min(products["description_length"]).as_py() < 120  # some thin descriptions
    assert products.schema.field("price").type == pa.decimal128(18, 2)


def _message(row: dict[str, object]) -> dict[str, object]:
    """The Segment message a browser SDK would have sent for this row."""
    msg: dict[str, object] = {
        "type": row["type"],
        "messageId": row["message_id"],
        "timestamp": row["timestamp"].isoformat(),  # type: ignore[attr-defined]
        "properties": json.loads(str(row["properties"])),
        "traits": json.loads(str(row["traits"])),
        "context": json.loads(str(row["context"])),
    }
    if row["type"] == "track":
        msg["event"] = row["event"]
    if row["user_id"] is not None:
        msg["userId"] = row["user_id"]
    if row["anonymous_id"] is not None:
        msg["anonymousId"] = row["anonymous_id"]
    return msg


def test_rows_are_what_normalize_makes_of_the_message(problem_store: SimulatedStore) -> None:
    events = problem_store.events
    # A sample with every event name in it.
    picks: list[int] = []
    for name in events["event"].unique().to_pylist():
        rows = pc.indices_nonzero(pc.equal(events["event"], name)).to_pylist()
        picks.extend(rows[:: max(1, len(rows) // 40)][:40])
    for row in events.take(picks).to_pylist():
        expected = normalize(
            _message(row),
            workspace_id="default",
            received_at=row["received_at"],
            source="simulator",
        )
        for key in ("properties", "traits", "context"):
            row[key] = json.loads(row[key])
        assert row == expected, row["event"]


def test_clean_store_has_the_same_shape(clean_store: SimulatedStore) -> None:
    assert clean_store.ground_truth == ()
    assert clean_store.events.num_rows > 100_000
    assert clean_store.facts.orders > 500


def test_anonymous_browsing_then_identify() -> None:
    sim = simulate_store(StoreConfig(seed=8, customers=500))
    t = sim.events
    anon_only = pc.and_(pc.is_null(t["user_id"]), pc.is_valid(t["anonymous_id"]))
    both = pc.and_(pc.is_valid(t["user_id"]), pc.is_valid(t["anonymous_id"]))
    assert pc.sum(anon_only).as_py() > 0 and pc.sum(both).as_py() > 0
    identifies = t.filter(pc.equal(t["event"], "$identify"))
    assert pc.all(pc.is_valid(identifies["user_id"])).as_py()
    assert pc.all(pc.is_valid(identifies["anonymous_id"])).as_py()
    assert sim.facts.identified_customers == pc.sum(sim.customers["identified"]).as_py()


def test_start_is_honoured() -> None:
    start = datetime(2025, 6, 1, tzinfo=UTC)
    sim = simulate_store(StoreConfig(seed=1, customers=200, start=start, days=30))
    assert pc.min(sim.events["timestamp"]).as_py() >= start
    assert pc.max(sim.events["timestamp"]).as_py() < start + timedelta(days=30)


def test_same_store_in_another_process() -> None:
    # Nothing may depend on hash order (PYTHONHASHSEED) or on the process.
    import hashlib
    import os
    import subprocess
    import sys

    code = (
        "import hashlib, pyarrow as pa\n"
        "from wayline.events.simulator import StoreConfig, simulate_store\n"
        "t = simulate_store(StoreConfig(seed=9, customers=200)).events\n"
        "sink = pa.BufferOutputStream()\n"
        "w = pa.ipc.new_stream(sink, t.schema); w.write_table(t); w.close()\n"
        "print(hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    t = simulate_store(StoreConfig(seed=9, customers=200)).events
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_stream(sink, t.schema)
    writer.write_table(t)
    writer.close()
    assert digests == {hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()}
