WITH cohort AS (
  SELECT
    person_id,
    c
  FROM (
    SELECT
      person_id,
      DATE_TRUNC('WEEK', TIMEZONE('UTC', MIN("timestamp"))) AS c
    FROM events
    WHERE
      workspace_id = ? AND TRUE AND TRUE AND event IN (?)
    GROUP BY
      person_id
  ) AS _c
), active AS (
  SELECT DISTINCT
    person_id,
    DATE_TRUNC('WEEK', TIMEZONE('UTC', "timestamp")) AS a
  FROM events
  WHERE
    workspace_id = ? AND TRUE AND TRUE AND event IN (?) AND "timestamp" < ?
)
SELECT
  cohort.c,
  active.a,
  COUNT(*) AS n
FROM cohort
JOIN active
  ON active.person_id = cohort.person_id AND active.a >= cohort.c
WHERE
  cohort.c < ?
GROUP BY
  cohort.c,
  active.a
UNION ALL
SELECT
  c,
  NULL,
  COUNT(*)
FROM cohort
WHERE
  c < ?
GROUP BY
  c
-- params: ('default', 'Order Completed', 'default', 'Order Completed', datetime.datetime(2026, 6, 1, 0, 0, tzinfo=datetime.timezone.utc), datetime.datetime(2026, 6, 1, 0, 0), datetime.datetime(2026, 6, 1, 0, 0))
