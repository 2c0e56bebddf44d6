WITH orders AS (
  SELECT
    person_id,
    ts,
    revenue,
    LAG(ts) OVER (PARTITION BY person_id ORDER BY ts, event, message_id) AS prev_ts,
    ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY ts, event, message_id) AS k
  FROM (
    SELECT
      person_id,
      "timestamp" AS ts,
      event,
      message_id,
      COALESCE(revenue, 0) AS revenue
    FROM events
    WHERE
      workspace_id = ? AND TRUE AND TRUE AND event IN (?)
  ) AS _o
), per_customer AS (
  SELECT
    person_id,
    COUNT(*) AS n
  FROM orders
  GROUP BY
    person_id
)
SELECT
  (
    SELECT
      COUNT(*)
    FROM per_customer
  ),
  (
    SELECT
      COUNT(*)
    FROM per_customer
    WHERE
      n >= 2
  ),
  COUNT(*),
  SUM(revenue),
  COUNT(prev_ts),
  MEDIAN(EPOCH(ts) - EPOCH(prev_ts)),
  AVG(EPOCH(ts) - EPOCH(prev_ts)),
  MEDIAN(EPOCH(ts) - EPOCH(prev_ts)) FILTER(WHERE
    k = 2),
  COUNT(*) FILTER(WHERE
    ts >= prev_ts + INTERVAL '0' DAYS AND ts < prev_ts + INTERVAL '7' DAYS),
  COUNT(*) FILTER(WHERE
    ts >= prev_ts + INTERVAL '7' DAYS AND ts < prev_ts + INTERVAL '30' DAYS),
  COUNT(*) FILTER(WHERE
    ts >= prev_ts + INTERVAL '30' DAYS AND ts < prev_ts + INTERVAL '60' DAYS),
  COUNT(*) FILTER(WHERE
    ts >= prev_ts + INTERVAL '60' DAYS AND ts < prev_ts + INTERVAL '90' DAYS),
  COUNT(*) FILTER(WHERE
    ts >= prev_ts + INTERVAL '90' DAYS AND ts < prev_ts + INTERVAL '180' DAYS),
  COUNT(*) FILTER(WHERE
    ts >= prev_ts + INTERVAL '180' DAYS)
FROM orders
-- params: ('default', 'Order Completed')
