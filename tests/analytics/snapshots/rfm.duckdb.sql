WITH per_customer AS (
  SELECT
    person_id,
    MAX(ts) AS last_order,
    COUNT(*) AS frequency,
    SUM(revenue) AS monetary
  FROM (
    SELECT
      person_id,
      "timestamp" AS ts,
      event,
      message_id,
      COALESCE(revenue, 0) AS revenue
    FROM events
    WHERE
      workspace_id = ? AND TRUE AND TRUE AND event IN (?, ?)
  ) AS _o
  GROUP BY
    person_id
)
SELECT
  person_id,
  last_order,
  frequency,
  monetary,
  1 + (
    5 * (
      RANK() OVER (ORDER BY last_order) - 1
    )
  ) // COUNT(*) OVER () AS r,
  1 + (
    5 * (
      RANK() OVER (ORDER BY frequency) - 1
    )
  ) // COUNT(*) OVER () AS f,
  1 + (
    5 * (
      RANK() OVER (ORDER BY monetary) - 1
    )
  ) // COUNT(*) OVER () AS m
FROM per_customer
ORDER BY
  person_id
-- params: ('default', 'purchase', 'Order Completed')
