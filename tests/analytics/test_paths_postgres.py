"""DuckDB and PostgreSQL give identical paths and transitions on the same random logs."""

from __future__ import annotations

import pytest
from journey_logs import T0, duckdb_backend, postgres_backend, random_log

from wayline.analytics.paths import GroupRule, PathsQuery, paths, transitions

pytestmark = pytest.mark.postgres

GROUP = (GroupRule("/product/.*", "product_view"),)
QUERIES = [
    PathsQuery(),
    PathsQuery(collapse_repeats=False, by="session", item="event"),
    PathsQuery(groups=GROUP, start="product_view", steps=4, exclude=("$page",)),
    PathsQuery(groups=GROUP, end="Order Completed", steps=3, since=T0),
    PathsQuery(start="a", end="Order Completed", steps=5, by="session"),
    PathsQuery(start="a", end="a", collapse_repeats=False, edge_limit=7, path_limit=3),
]


def test_postgres_gives_identical_results(postgres_url: str) -> None:
    with postgres_backend(postgres_url, time_zone="America/Sao_Paulo") as (pg, load):
        for seed in (1, 2):
            rows = random_log(seed)
            duck = duckdb_backend(rows)
            load(rows)
            for q in QUERIES:
                expected = paths(duck, q)
                assert expected.links, q  # the case is not vacuous
                assert paths(pg, q) == expected, q
                assert transitions(pg, q) == transitions(duck, q), q
