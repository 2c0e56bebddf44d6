"""Snapshots of the generated SQL, per dialect: a change to a query shows up in review.

Regenerate after an intended change with ``WAYLINE_UPDATE_SNAPSHOTS=1 pytest <this file>``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlglot

from wayline.analytics.customer_value import OrdersQuery, repeat_purchase_query, rfm_query
from wayline.analytics.lifecycle import LifecycleQuery, lifecycle_query
from wayline.analytics.paths import GroupRule, PathsQuery, paths_query, transitions_query
from wayline.analytics.query import CompiledQuery
from wayline.analytics.retention import RetentionQuery, retention_query

SNAPSHOTS = Path(__file__).parent / "snapshots"
END = datetime(2026, 6, 1, tzinfo=UTC)
GROUP = (GroupRule("/product/.*", "product_view"),)

QUERIES: dict[str, CompiledQuery] = {
    "transitions": transitions_query(PathsQuery(collapse_repeats=False)),
    "paths": paths_query(PathsQuery(groups=GROUP, exclude=("$identify",))),
    "paths_from": paths_query(PathsQuery(start="Product Added", steps=4)),
    "paths_to": paths_query(PathsQuery(end="Order Completed", by="session")),
    "paths_between": paths_query(PathsQuery(start="Cart Viewed", end="Order Completed")),
    "retention": retention_query(RetentionQuery(period="week"), END),
    "repeat_purchase": repeat_purchase_query(OrdersQuery()),
    "rfm": rfm_query(OrdersQuery(purchase_events=("purchase", "Order Completed"))),
    "lifecycle": lifecycle_query(LifecycleQuery(period="month", since=END), END),
}


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_sql_snapshot(name: str, dialect: str) -> None:
    cq = QUERIES[name]
    # Pretty-printed by sqlglot so a diff points at the clause that changed; the SQL that runs
    # is the same statement (transpile() on a single line).
    pretty = ";\n".join(sqlglot.transpile(cq.sql, read="duckdb", write=dialect, pretty=True))
    text = pretty + "\n-- params: " + repr(cq.params) + "\n"
    path = SNAPSHOTS / f"{name}.{dialect}.sql"
    if os.environ.get("WAYLINE_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text)
    assert path.read_text() == text
