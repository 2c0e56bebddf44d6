WITH active AS (
  SELECT DISTINCT
    person_id,
    DATE_TRUNC('MONTH', TIMEZONE('UTC', "timestamp")) AS period
  FROM events
  WHERE
    workspace_id = %s AND "timestamp" < %s AND TRUE
), marked AS (
  SELECT
    person_id,
    period,
    LAG(period) OVER (PARTITION BY person_id ORDER BY period) AS prev,
    LEAD(period) OVER (PARTITION BY person_id ORDER BY period) AS next
  FROM active
), states AS (
  SELECT
    period,
    CASE
      WHEN prev IS NULL
      THEN 'new'
      WHEN prev + INTERVAL '1 MONTH' = period
      THEN 'returning'
      ELSE 'resurrecting'
    END AS state
  FROM marked
  UNION ALL
  SELECT
    period + INTERVAL '1 MONTH',
    'dormant'
  FROM marked
  WHERE
    next IS NULL OR next <> period + INTERVAL '1 MONTH'
)
SELECT
  period,
  state,
  COUNT(*)
FROM states
WHERE
  period < %s AND period >= %s
GROUP BY
  period,
  state
-- params: ('default', datetime.datetime(2026, 6, 1, 0, 0, tzinfo=datetime.timezone.utc), datetime.datetime(2026, 6, 1, 0, 0), datetime.datetime(2026, 6, 1, 0, 0))
