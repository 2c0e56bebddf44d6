WITH seq AS MATERIALIZED (
  SELECT
    person_id,
    item,
    LAG(item) OVER w AS prev_item,
    EPOCH(ts) - EPOCH(LAG(ts) OVER w) AS gap,
    LEAD(item) OVER w IS NULL AS is_last
  FROM (
    SELECT
      person_id,
      unit,
      ts,
      raw_item,
      raw_item AS item
    FROM (
      SELECT
        person_id,
        unit,
        ts,
        CASE
          WHEN event IN ('$page', '$screen') AND NOT page_path IS NULL
          THEN page_path
          ELSE event
        END AS raw_item
      FROM (
        SELECT
          person_id,
          '' AS unit,
          ts,
          event,
          page_path
        FROM (
          SELECT
            person_id,
            session_id,
            "timestamp" AS ts,
            event,
            page_path
          FROM events
          WHERE
            workspace_id = ? AND TRUE AND TRUE
        ) AS _b
      ) AS _u
    ) AS _r
  ) AS _i
  WINDOW w AS (PARTITION BY person_id ORDER BY ts, raw_item)
), edges AS (
  SELECT
    COALESCE(prev_item, 'path_start') AS source,
    item AS target,
    person_id,
    gap
  FROM seq
  WHERE
    TRUE
  UNION ALL
  SELECT
    item AS source,
    'path_end' AS target,
    person_id,
    NULL AS gap
  FROM seq
  WHERE
    is_last
)
SELECT
  source,
  target,
  COUNT(*) AS n,
  COUNT(DISTINCT person_id) AS persons,
  MEDIAN(gap) AS median_gap
FROM edges
GROUP BY
  source,
  target
ORDER BY
  n DESC,
  source,
  target
-- params: ('default',)
