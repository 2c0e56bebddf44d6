"""DuckDB and PostgreSQL give identical funnels on the same seeded random logs."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from test_funnel_reference import T0, backend, row

from wayline.analytics.backend import PostgresBackend
from wayline.analytics.filters import PropertyFilter
from wayline.analytics.funnels import (
    FunnelExclusion,
    FunnelQuery,
    FunnelResult,
    FunnelStep,
    dropped_persons,
    parse_steps,
    run_funnel,
)
from wayline.storage.eventstore import rows_to_arrow
from wayline.storage.pg_events import copy_arrow, create_events_table, psycopg_url

pytestmark = pytest.mark.postgres


def seeded_log(seed: int, events: int = 1200, people: int = 60) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows = []
    for _ in range(events):
        person = f"u{rnd.randrange(people)}"
        event = rnd.choice(["a", "a", "b", "b", "c", "x", "$identify", "$page"])
        ts = T0 + timedelta(days=rnd.randrange(40), minutes=rnd.randrange(0, 24 * 60, 5))
        rows.append(
            row(
                person,
                event,
                ts,
                anonymous_id=rnd.choice([None, f"anon-{person}"]),
                properties={"k": rnd.choice([1, 2, "v"]), "price": rnd.choice([5, 12.5, 30])},
                traits={"persona": rnd.choice(["bargain", "loyal"])}
                if event == "$identify"
                else None,
                channel=rnd.choice([None, "ads", "email", "social"]),
                session_id=rnd.choice([None, None, "s1", "s2"]),
            )
        )
    return rows


QUERIES = [
    FunnelQuery(parse_steps("a,b,c")),
    FunnelQuery(parse_steps("a,b|c,a"), window=timedelta(days=2), breakdown="channel"),
    FunnelQuery(parse_steps("a,b,c"), window=None, breakdown="persona"),
    FunnelQuery(parse_steps("a[price>=10],b[k=1],c"), breakdown="cohort"),
    FunnelQuery(parse_steps("a,b,c"), order="strict", window=timedelta(days=7)),
    FunnelQuery(parse_steps("a,b,c"), order="any", window=timedelta(hours=12), breakdown="k"),
    FunnelQuery(
        parse_steps("a,b,c"),
        exclusions=(FunnelExclusion(("x",), (PropertyFilter("k", "neq", "v"),), 1, 3),),
        breakdown="traits.persona",
    ),
    FunnelQuery(
        parse_steps("a,b,c"),
        order="strict",
        window=None,
        exclusions=(FunnelExclusion(("x",), (), 1, 2),),
    ),
    FunnelQuery(parse_steps("a,b"), by="session", window=timedelta(hours=1)),
    # Two exclusions ending at the same step.
    FunnelQuery(
        parse_steps("a,b,c"),
        window=timedelta(days=3),
        exclusions=(FunnelExclusion(("x",), (), 1, 3), FunnelExclusion(("$page",), (), 2, 3)),
    ),
    FunnelQuery(
        (FunnelStep(("a",)), FunnelStep(("b",))),
        since=T0 + timedelta(days=5),
        until=T0 + timedelta(days=20),
        window=timedelta(days=3),
        breakdown="device",
    ),
]


def _rounded(result: FunnelResult) -> Any:
    """The result with times rounded to the millisecond: the engines' float arithmetic may
    differ in the last bits."""
    data = result.to_dict()
    text = json.dumps(data, default=str)
    return json.loads(text, parse_float=lambda s: round(float(s), 3))


def test_postgres_gives_identical_funnels(postgres_url: str) -> None:
    conn = psycopg.connect(psycopg_url(postgres_url), autocommit=True)
    # A session time zone far from UTC: nothing may depend on it.
    conn.execute("SET TIME ZONE 'Pacific/Kiritimati'")
    create_events_table(conn)
    pg = PostgresBackend(conn)
    try:
        for seed in (1, 2):
            rows = seeded_log(seed)
            duck = backend(rows)
            conn.execute("TRUNCATE events")
            copy_arrow(conn, rows_to_arrow(rows))
            for query in QUERIES:
                expected = run_funnel(duck, query)
                assert expected.steps[-1].users > 0 or query.order == "strict", query
                assert _rounded(run_funnel(pg, query)) == _rounded(expected), query
                assert dropped_persons(pg, query, 2) == dropped_persons(duck, query, 2), query
    finally:
        conn.close()
