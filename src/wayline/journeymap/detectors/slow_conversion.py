"""Unusually long time to convert: a segment whose customers take much longer to buy.

Per customer: the time from their first visit in the period to their first purchase. A
converter is *slow* when that time is above the 75th percentile of all converters; per segment
(first-visit device type, channel, country) the share of slow converters is
compared with the rest's (:mod:`.segments`). A slow conversion delays revenue rather than losing
it, so these findings are at most of medium severity; revenue at stake: the extra slow
converters × average order value (their orders are late, and at risk).
"""

from __future__ import annotations

from wayline.analytics.query import CompiledQuery, Params
from wayline.journeymap.detectors.base import (
    BROWSE_ROLES,
    Evidence,
    Finding,
    StoreView,
    in_list,
)
from wayline.journeymap.detectors.segment_step import money, segment_label
from wayline.journeymap.detectors.segments import scan
from wayline.journeymap.detectors.visits import Cell

KIND = "slow_conversion"
QUANTILE = 0.75


def _people_sql(view: StoreView, p: Params) -> str:
    """Per converter: first-touch segment values (those of their first browsing event) and the
    seconds from that event to their first purchase.

    Only converters' events are read past the first filter (those of customers with a purchase
    in the period, a semi-join on a small set): the rows kept for the two uses below were every
    event of the period, 10 M rows with three text columns on 10 M events."""
    prof = view.profile
    browse = in_list(p, "event", prof.names(*BROWSE_ROLES))
    buy = in_list(p, "event", prof.names("purchase"))
    bought = in_list(p, "event", prof.names("purchase"))
    buyers = f"SELECT person_id FROM events WHERE {view.where(p)} AND {bought}"
    return f"""
        WITH e AS (SELECT person_id, timestamp, device_type, channel, country,
                          CASE WHEN {browse} THEN 1 ELSE 0 END AS browse,
                          CASE WHEN {buy} THEN 1 ELSE 0 END AS buy
                   FROM events WHERE {view.where(p)} AND person_id IN ({buyers})),
             f AS (SELECT person_id, min(CASE WHEN browse = 1 THEN timestamp END) AS first_seen,
                          min(CASE WHEN buy = 1 THEN timestamp END) AS first_buy
                   FROM e GROUP BY person_id)
        SELECT f.person_id, min(e.device_type) AS device_type, min(e.channel) AS channel,
               min(e.country) AS country,
               epoch(min(f.first_buy)) - epoch(min(f.first_seen)) AS seconds
        FROM f JOIN e ON e.person_id = f.person_id AND e.timestamp = f.first_seen
                     AND e.browse = 1
        WHERE f.first_buy IS NOT NULL
        GROUP BY f.person_id"""


def dims(view: StoreView) -> tuple[str, ...]:
    """First-touch device, channel and country. Profile traits are left out on purpose: a
    persona is usually *defined* by how often someone shops, so its time to buy describes the
    persona rather than a problem with the journey."""
    del view
    return ("device_type", "channel", "country")


def cells_query(view: StoreView) -> CompiledQuery:
    """Converters and slow converters per first-touch segment, each row with the threshold
    (the converters' time-to-buy quantile). One statement, so that the converters are found
    once for both the quantile and the cells."""
    p = Params()
    cols = ", ".join(f"c.{d}" for d in dims(view))
    sql = f"""
        WITH c AS MATERIALIZED ({_people_sql(view, p)}),
             th AS (SELECT quantile_cont(seconds, {QUANTILE}) AS q FROM c)
        SELECT {cols}, count(*) AS converters,
               sum(CASE WHEN c.seconds > th.q THEN 1 ELSE 0 END) AS slow, th.q
        FROM c CROSS JOIN th
        GROUP BY {cols}, th.q"""
    return p.compile(sql)


def detect(view: StoreView) -> list[Finding]:
    prof = view.profile
    if not prof.has("purchase"):
        return []
    rows = view.fetch(cells_query(view))
    if not rows or rows[0][-1] is None:
        return []  # no converters
    threshold = float(rows[0][-1])
    d = dims(view)
    cells = [
        Cell(
            {k: (None if v is None else str(v)) for k, v in zip(d, row, strict=False)},
            {"converters": int(row[len(d)]), "slow": int(row[len(d) + 1] or 0)},
        )
        for row in rows
    ]
    c = view.context
    buy = prof.main_name("purchase")
    first = prof.main_name("page_view") if prof.has("page_view") else "first visit"
    found = []
    for hit in scan(cells, d, "slow", "converters", "higher", view.thresholds):
        cmp = hit.comparison
        label = segment_label(hit.dimension, hit.value)
        found.append(
            Finding(
                kind=KIND,
                title=f"Customers with {label} take unusually long to buy",
                stage="consideration",
                step=f"{first} → {buy}",
                step_events=(first, buy),
                effect=min(10.0, cmp.ratio - 1),
                max_severity="medium",
                evidence=Evidence(
                    metric=f"share of buyers taking more than {threshold / 86400:.1f} days "
                    "from their first visit to their first order",
                    value=cmp.rate,
                    baseline=cmp.baseline,
                    unit="customers",
                    affected_customers=cmp.n_a,
                    revenue_at_stake=money(cmp.excess("higher"), prof.average_order_value),
                    since=c.since,
                    until=c.until,
                    segment={hit.dimension: hit.value},
                    detail=(
                        f"{cmp.k_a} of {cmp.n_a} buyers with {label} took longer than "
                        f"{threshold / 86400:.1f} days ({cmp.rate:.0%}, others "
                        f"{cmp.baseline:.0%})."
                    ),
                    z_score=cmp.z,
                    sample_size=cmp.n_a,
                ),
            )
        )
    return found
