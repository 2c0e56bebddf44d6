"""Property filters (:mod:`wayline.analytics.filters`): parsing, and the SQL against the
reference evaluation on random property values, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import psycopg
import pytest
from funnel_reference import passes
from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.analytics.backend import transpile
from wayline.analytics.filters import (
    PropertyFilter,
    date_range_sql,
    filter_sql,
    filters_sql,
    parse_filter,
    resolve_breakdown,
    resolve_key,
)
from wayline.errors import InputError

VALUES = st.one_of(
    st.none(),
    st.integers(-3, 12),
    st.sampled_from([2.5, 10.0, "10", "abc", "ab", "", True, False, "x y"]),
)
FILTERS = (
    st.builds(
        PropertyFilter,
        key=st.sampled_from(["k", "properties.k", "channel"]),
        op=st.sampled_from(["eq", "neq", "contains", "not_contains", "is_set", "is_not_set"]),
        value=st.sampled_from(["10", "ab", "true", "2.5", "email"]),
    )
    | st.builds(
        PropertyFilter,
        key=st.just("k"),
        op=st.sampled_from(["gt", "gte", "lt", "lte"]),
        value=st.sampled_from([0, 2.5, 10, -1]),
    )
    | st.builds(
        PropertyFilter,
        key=st.sampled_from(["k", "channel"]),
        op=st.sampled_from(["in", "not_in"]),
        value=st.sampled_from([("10", "ab"), ("email",), ("true", "2.5")]),
    )
)


def _duck() -> Any:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (properties JSON, channel VARCHAR, revenue DECIMAL(18,2))")
    return con


_CON = _duck()  # one connection for all examples: each empties the table first


@settings(max_examples=300, deadline=None)
@given(VALUES, st.sampled_from([None, "email", "ads"]), FILTERS)
def test_filter_sql_matches_the_reference(
    value: Any, channel: str | None, f: PropertyFilter
) -> None:
    props = {} if value is None else {"k": value}
    row = {"properties": json.dumps(props), "channel": channel}
    con = _CON
    con.execute("DELETE FROM t")
    con.execute("INSERT INTO t VALUES (?, ?, NULL)", [row["properties"], channel])
    sql = filter_sql(f)
    (got,) = con.execute(f"SELECT {sql.text} FROM t", list(sql.params)).fetchone()
    assert got is passes(row, f)


@pytest.mark.postgres
def test_filters_give_the_same_answers_on_postgres(postgres_url: str) -> None:
    from wayline.storage.pg_events import psycopg_url

    rows = [
        ({"k": 10, "name": "xabx", "nested": {"a": 1}, "flag": True}, "email", "10.00"),
        ({"k": "abc", "name": "zz"}, "ads", None),
        ({"k": 2.5}, None, "19.99"),
        ({}, "email", None),
    ]
    filters = [
        parse_filter("k>=3"),
        parse_filter("k<3"),
        parse_filter("channel=email|ads"),
        parse_filter("name~ab"),
        parse_filter("name!~ab"),
        parse_filter("properties.nested.a=1"),
        parse_filter("flag=true"),
        parse_filter("revenue=10"),
        parse_filter("revenue>15"),
        parse_filter("k?"),
        parse_filter("k!?"),
        parse_filter("k!=abc"),
        parse_filter("channel!=email|ads"),
    ]
    duck = _duck()
    pg = psycopg.connect(psycopg_url(postgres_url), autocommit=True)
    pg.execute("CREATE TABLE t (properties JSONB, channel VARCHAR, revenue DECIMAL(18,2))")
    for props, channel, revenue in rows:
        duck.execute("INSERT INTO t VALUES (?, ?, ?)", [json.dumps(props), channel, revenue])
        pg.execute("INSERT INTO t VALUES (%s, %s, %s)", [json.dumps(props), channel, revenue])
    try:
        for f in filters:
            d = filter_sql(f, dialect="duckdb")
            p = filter_sql(f, dialect="postgres")
            q = "SELECT {} FROM t ORDER BY CAST(properties AS VARCHAR)"
            want = duck.execute(q.format(d.text), list(d.params)).fetchall()
            got = pg.execute(transpile(q.format(p.text), "postgres"), list(p.params)).fetchall()
            # Same row order: sort both by the answer-independent text of the properties.
            assert sorted(want) == sorted(got), f
            assert any(v for (v,) in want) and not all(v for (v,) in want), f  # not vacuous
    finally:
        pg.close()


def test_parse_filter_reads_the_operators() -> None:
    assert parse_filter("channel=email") == PropertyFilter("channel", "eq", "email")
    assert parse_filter("price >= 10") == PropertyFilter("price", "gte", 10)
    assert parse_filter("country!=US|CA") == PropertyFilter("country", "not_in", ("US", "CA"))
    assert parse_filter("name~shoe") == PropertyFilter("name", "contains", "shoe")
    assert parse_filter("coupon?") == PropertyFilter("coupon", "is_set")
    assert parse_filter("coupon!?") == PropertyFilter("coupon", "is_not_set")
    for bad in ("price>=cheap", "=x", "k=", "coupon?x"):
        with pytest.raises(InputError):
            parse_filter(bad)
    with pytest.raises(InputError):
        PropertyFilter("k", "gt", "ten")
    with pytest.raises(InputError):
        PropertyFilter("k'); DROP TABLE events; --", "eq", "x")


def test_keys_and_breakdowns_resolve() -> None:
    assert resolve_key("platform").column == "device_type"
    assert resolve_key("context.page.url").path == ("page", "url")
    assert resolve_key("size").path == ("size",)
    assert resolve_breakdown("cohort").kind == "cohort"
    assert resolve_breakdown("traits.plan").kind == "trait"
    assert resolve_breakdown("persona").kind == "event_or_trait"
    assert resolve_breakdown("channel").kind == "event"
    assert resolve_breakdown("properties.size").kind == "event"


def test_fragments_keep_parameters_in_order() -> None:
    from datetime import UTC, datetime

    a, b = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    sql = date_range_sql(a, b) + " AND " + filters_sql([parse_filter("k=1"), parse_filter("j>2")])
    assert sql.params == (a, b, "1", 2.0)
    assert sql.text.count("?") == 4
    assert filters_sql([]).text == "TRUE"
    with pytest.raises(InputError):
        date_range_sql(b, a)
