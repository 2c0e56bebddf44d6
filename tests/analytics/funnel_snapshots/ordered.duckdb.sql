WITH base AS (SELECT hash(person_id) AS p, person_id AS pid, epoch_us("timestamp") AS t, (event IN ('a')) AS m1, (event IN ('b', 'c') AND COALESCE(json_extract_string("properties", '$."k"') = ?, FALSE)) AS m2, (event IN ('d')) AS m3, (event IN ('x')) AS x1, "channel" AS bd FROM events WHERE workspace_id = ? AND event IN ('a', 'b', 'c', 'd', 'x')),
e1 AS (SELECT hash(person_id) AS p, epoch_us("timestamp") AS t FROM events WHERE workspace_id = ? AND (event IN ('a'))),
e2 AS (SELECT hash(person_id) AS p, epoch_us("timestamp") AS t FROM events WHERE workspace_id = ? AND (event IN ('b', 'c') AND COALESCE(json_extract_string("properties", '$."k"') = ?, FALSE))),
e3 AS (SELECT hash(person_id) AS p, epoch_us("timestamp") AS t FROM events WHERE workspace_id = ? AND (event IN ('d'))),
xe1 AS (SELECT hash(person_id) AS p, epoch_us("timestamp") AS t FROM events WHERE workspace_id = ? AND (event IN ('x'))),
r1 AS (SELECT p, t FROM e1),
r2w AS (SELECT p, t, tp, s, a1 FROM (SELECT n.p, n.t, r.t AS tp, r.t AS s, r.t AS a1 FROM e2 AS n ASOF JOIN r1 AS r ON n.p = r.p AND n.t > r.t) AS q WHERE t - s <= 604800000000),
r2x1 AS (SELECT p, t, tp, s, a1 FROM (SELECT n.p, n.t, n.tp, n.s, n.a1, r.t AS lx1 FROM r2w AS n ASOF LEFT JOIN xe1 AS r ON n.p = r.p AND n.t > r.t) AS q WHERE lx1 IS NULL OR lx1 <= a1),
r2 AS (SELECT p, t, tp, s FROM r2x1),
r3w AS (SELECT p, t, tp, s FROM (SELECT n.p, n.t, r.t AS tp, r.s AS s FROM e3 AS n ASOF JOIN r2 AS r ON n.p = r.p AND n.t > r.t) AS q WHERE t - s <= 604800000000),
r3 AS (SELECT p, t, tp, s FROM r3w),
arrivals AS (SELECT DISTINCT 1 AS k, p, CAST(NULL AS BIGINT) AS t, CAST(NULL AS BIGINT) AS tp, CAST(NULL AS BIGINT) AS s FROM e1 UNION ALL SELECT 2 AS k, p, min(t) AS t, min(tp) AS tp, min(s) AS s FROM r2 GROUP BY p UNION ALL SELECT 3 AS k, p, min(t) AS t, min(tp) AS tp, min(s) AS s FROM r3 GROUP BY p),
touch AS (SELECT p, pid, bd FROM (SELECT p, pid, bd AS bd, row_number() OVER (PARTITION BY p ORDER BY t, bd NULLS LAST) AS rn FROM base WHERE m1) AS q WHERE rn = 1),
unit_value AS (SELECT p, bd AS value FROM touch)
SELECT GROUPING(v.value) AS is_total, v.value AS value, a.k, count(*) AS users, quantile_cont(a.t - a.tp, [0.5, 0.9]) AS prev_q, quantile_cont(a.t - a.s, [0.5, 0.9]) AS start_q FROM arrivals AS a LEFT JOIN unit_value AS v ON v.p = a.p GROUP BY GROUPING SETS ((a.k, v.value), (a.k)) ORDER BY is_total DESC, value, a.k
-- params: ('1', 'default', 'default', 'default', '1', 'default', 'default')
