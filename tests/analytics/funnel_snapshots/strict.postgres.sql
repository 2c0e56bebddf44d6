WITH base AS (SELECT person_id AS p, person_id AS pid, CAST(EXTRACT(EPOCH FROM "timestamp") * 1000000 AS BIGINT) AS t, (event IN (?)) AS m1, (event IN (?, ?) AND COALESCE(jsonb_extract_path_text("properties", 'k') = ?, FALSE)) AS m2, (event IN (?)) AS m3, (event IN (?)) AS x1, "channel" AS bd FROM events WHERE workspace_id = ? AND event NOT IN (?, ?, ?)),
ranked AS (SELECT *, dense_rank() OVER (PARTITION BY p ORDER BY t) AS rk FROM base),
e1 AS (SELECT DISTINCT p, rk, t FROM ranked WHERE m1),
e2 AS (SELECT DISTINCT p, rk, t FROM ranked WHERE m2),
e3 AS (SELECT DISTINCT p, rk, t FROM ranked WHERE m3),
c1 AS (SELECT p, t AS s, t AS t1, rk AS q FROM e1),
c2 AS (SELECT r.p, r.s, r.t1, CASE WHEN n.t - r.s <= 604800000000 THEN n.t END AS t2, CASE WHEN n.t - r.s <= 604800000000 THEN n.rk END AS q FROM c1 AS r LEFT JOIN e2 AS n ON n.p = r.p AND n.rk = r.q + 1),
c3 AS (SELECT r.p, r.s, r.t1, r.t2, CASE WHEN n.t - r.s <= 604800000000 THEN n.t END AS t3, CASE WHEN n.t - r.s <= 604800000000 THEN n.rk END AS q FROM c2 AS r LEFT JOIN e3 AS n ON n.p = r.p AND n.rk = r.q + 1),
xe1 AS (SELECT p, t FROM base WHERE x1),
xs1 AS (SELECT c.p, c.s, c.t1, c.t2, c.t3, CASE WHEN (SELECT min(x.t) FROM xe1 AS x WHERE x.p = c.p AND x.t > c.t1) < c.t2 THEN 2 ELSE 4 END AS z1 FROM c3 AS c),
cut AS (SELECT p, s, CASE WHEN 1 < z1 THEN t1 END AS t1, CASE WHEN 2 < z1 THEN t2 END AS t2, CASE WHEN 3 < z1 THEN t3 END AS t3 FROM xs1),
arrivals AS (SELECT 1 AS k, p, min(t) AS t, min(tp) AS tp, min(s) AS s FROM (SELECT p, t1 AS t, CAST(NULL AS BIGINT) AS tp, max(s) AS s FROM cut WHERE t1 IS NOT NULL GROUP BY p, t1) AS g1 GROUP BY p UNION ALL SELECT 2 AS k, p, min(t) AS t, min(tp) AS tp, min(s) AS s FROM (SELECT p, t2 AS t, max(t1) AS tp, max(s) AS s FROM cut WHERE t2 IS NOT NULL GROUP BY p, t2) AS g2 GROUP BY p UNION ALL SELECT 3 AS k, p, min(t) AS t, min(tp) AS tp, min(s) AS s FROM (SELECT p, t3 AS t, max(t2) AS tp, max(s) AS s FROM cut WHERE t3 IS NOT NULL GROUP BY p, t3) AS g3 GROUP BY p),
touch AS (SELECT p, pid, bd FROM (SELECT p, pid, bd AS bd, row_number() OVER (PARTITION BY p ORDER BY t, bd NULLS LAST) AS rn FROM base WHERE m1) AS q WHERE rn = 1),
unit_value AS (SELECT p, bd AS value FROM touch)
SELECT GROUPING(v.value) AS is_total, v.value AS value, a.k, count(*) AS users, quantile_cont(a.t - a.tp, [0.5, 0.9]) AS prev_q, quantile_cont(a.t - a.s, [0.5, 0.9]) AS start_q FROM arrivals AS a LEFT JOIN unit_value AS v ON v.p = a.p GROUP BY GROUPING SETS ((a.k, v.value), (a.k)) ORDER BY is_total DESC, value, a.k
-- params: ('a', 'b', 'c', '1', 'd', 'x', 'default', '$identify', '$alias', '$group')
