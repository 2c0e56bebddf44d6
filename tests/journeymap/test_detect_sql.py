"""The detectors' queries are data: built without a database, with every value (workspace,
dates, event names) bound as a parameter, and portable to PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from wayline.analytics.backend import transpile
from wayline.analytics.query import CompiledQuery
from wayline.journeymap.detectors import (
    StoreView,
    churn,
    product_content,
    slow_conversion,
    visits,
)
from wayline.journeymap.detectors.churn import Lateness
from wayline.journeymap.detectors.product_content import ContentKeys
from wayline.journeymap.painpoints import DetectionContext
from wayline.journeymap.stages import default_mapping


class Canned:
    """A backend answering the profile query with a store of unusual event names."""

    dialect = "duckdb"

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if "count(revenue)" in sql:
            return [
                ("view item", 100, None, 0),
                ("add to cart", 20, None, 0),
                ("begin checkout", 10, None, 0),
                ("add payment info", 8, None, 0),
                ("purchase", 6, 300, 6),
                ("delivery completed", 5, None, 0),
                ("refund", 1, None, 0),
                ("checkout failed", 2, None, 0),
                ("$identify", 3, None, 0),
            ]
        return [('{"plan": "gold"}',), ('{"plan": "free"}',)]


@pytest.fixture
def view() -> StoreView:
    ctx = DetectionContext(
        "ws-secret",
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 7, 1, tzinfo=UTC),
        default_mapping(),
        segment={"country": "FR", "traits.plan": "gold"},
    )
    return StoreView(Canned(), ctx)


def queries(view: StoreView) -> dict[str, CompiledQuery]:
    return {
        "visits": visits.summary_query(view),
        "slow_cells": slow_conversion.cells_query(view),
        "products": product_content.products_query(
            view, ContentKeys("product_id", ("has_reviews",), ("review_count",), ("desc_len",))
        ),
        "late": churn.delivery_query(view, Lateness("late", numeric=False)),
        "late_days": churn.delivery_query(view, Lateness("days_late", numeric=True)),
        "refund": churn.exposure_query(view, ("refund",)),
    }


def test_values_are_parameters(view: StoreView) -> None:
    assert view.profile.funnel() == (
        "product_view",
        "add_to_cart",
        "checkout",
        "payment",
        "purchase",
    )
    assert view.profile.trait_keys == ("plan",)
    for name, q in queries(view).items():
        for value in ("ws-secret", "view item", "begin checkout", "purchase", "2026-"):
            assert value not in q.sql, (name, value)
        assert "ws-secret" in q.params, name
        assert q.sql.count("?") == len(q.params), name


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_queries_parse_in_both_dialects(view: StoreView, dialect: str) -> None:
    for name, q in queries(view).items():
        text = transpile(q.sql, dialect)
        assert sqlglot.parse_one(text.replace("%s", "NULL"), read=dialect), name


def test_empty_and_tiny_stores_give_no_pain_points(tmp_path: Path) -> None:
    from wayline.analytics.backend import DuckDBBackend
    from wayline.journeymap.painpoints import detect_pain_points
    from wayline.storage.eventstore import EventStore

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ctx = DetectionContext("w", t0, t0 + timedelta(days=90), default_mapping())
    with EventStore(tmp_path / "e.duckdb") as store:
        backend = DuckDBBackend(store.con)
        assert detect_pain_points(backend, ctx) == []
        rows = [
            {
                "workspace_id": "w",
                "message_id": f"m{i}-{name}",
                "type": "track",
                "event": name,
                "person_id": f"p{i % 7}",
                "anonymous_id": f"p{i % 7}",
                "timestamp": t0 + timedelta(hours=i),
                "received_at": t0 + timedelta(hours=i),
                "source": "test",
            }
            for i in range(40)
            for name in (("$page",) if i % 2 else ("$page", "Product Viewed", "Order Completed"))
        ]
        store.append_rows(rows)
        assert detect_pain_points(backend, ctx) == []
