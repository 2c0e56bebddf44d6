"""DuckDB and PostgreSQL give identical retention, lifecycle, repeat-purchase and RFM results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from journey_logs import T0, duckdb_backend, postgres_backend, random_log

from wayline.analytics.customer_value import OrdersQuery, repeat_purchase, rfm
from wayline.analytics.lifecycle import LifecycleQuery, lifecycle
from wayline.analytics.retention import RetentionQuery, retention

pytestmark = pytest.mark.postgres

NOW = T0 + timedelta(days=100, hours=7)


def test_postgres_gives_identical_results(postgres_url: str) -> None:
    # A session time zone half an hour off any whole hour: periods must still be UTC periods.
    with postgres_backend(postgres_url, time_zone="Asia/Kolkata") as (pg, load):
        for seed in (3, 4):
            rows = random_log(seed)
            duck = duckdb_backend(rows)
            load(rows)
            for period in ("day", "week", "month"):
                for cohort in ("first_purchase", "first_seen"):
                    rq = RetentionQuery(period=period, cohort=cohort, periods=10)
                    expected = retention(duck, rq, now=NOW)
                    assert expected.cohorts
                    assert retention(pg, rq, now=NOW) == expected
                lq = LifecycleQuery(period=period, since=T0 + timedelta(days=20))
                expected_lc = lifecycle(duck, lq, now=NOW)
                assert any(p.dormant for p in expected_lc.periods)
                assert lifecycle(pg, lq, now=NOW) == expected_lc
            oq = OrdersQuery(purchase_events=("Order Completed", "a"))
            expected_rp = repeat_purchase(duck, oq)
            assert expected_rp.gaps > 0
            assert repeat_purchase(pg, oq) == expected_rp
            expected_rfm = rfm(duck, oq, now=NOW)
            assert len({c.score for c in expected_rfm.customers}) > 5
            assert rfm(pg, oq, now=NOW) == expected_rfm
