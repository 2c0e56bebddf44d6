WITH win AS MATERIALIZED (
  SELECT
    person_id,
    unit,
    1 - back AS step,
    item,
    CASE WHEN prev_item IS NULL THEN 'path_start' WHEN back < 5 THEN prev_item END AS source,
    CASE WHEN NOT prev_item IS NULL AND back < 5 THEN gap END AS gap,
    back = 1 AND anchor_is_last AS is_end
  FROM (
    SELECT
      person_id,
      unit,
      item,
      prev_item,
      gap,
      ROW_NUMBER() OVER (PARTITION BY person_id, unit ORDER BY rn DESC) AS back,
      (
        ys_before = 0 AND others_after = 0
      ) AS anchor_is_last
    FROM (
      SELECT
        person_id,
        unit,
        item,
        ROW_NUMBER() OVER w AS rn,
        LAG(item) OVER w AS prev_item,
        EPOCH(ts) - EPOCH(LAG(ts) OVER w) AS gap,
        COUNT(*) FILTER(WHERE
          item = ?) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS ys_before,
        COUNT(*) FILTER(WHERE
          item = ?) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS ys,
        COUNT(*) FILTER(WHERE
          item <> ?) OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS others_after,
        COUNT(*) OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS rows_after
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
              session_key AS unit,
              ts,
              event,
              page_path
            FROM (
              SELECT
                _s1.*,
                0 AS _new_session,
                's:' || _s1."session_id" AS session_key
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
              ) AS _s1
              WHERE
                NOT _s1."session_id" IS NULL
              UNION ALL
              SELECT
                _sx.*,
                'i:' || CAST(SUM(_sx._new_session) OVER (PARTITION BY "person_id" ORDER BY "ts") AS TEXT) AS session_key
              FROM (
                SELECT
                  _s0.*,
                  CASE
                    WHEN LAG("ts") OVER (PARTITION BY "person_id" ORDER BY "ts") IS NULL
                    OR EPOCH("ts") - EPOCH(LAG("ts") OVER (PARTITION BY "person_id" ORDER BY "ts")) > 1800.0
                    THEN 1
                    ELSE 0
                  END AS _new_session
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
                ) AS _s0
                WHERE
                  _s0."session_id" IS NULL
              ) AS _sx
            ) AS _s
          ) AS _u
        ) AS _r
      ) AS _i
      WINDOW w AS (PARTITION BY person_id, unit ORDER BY ts, raw_item)
    ) AS _p1
    WHERE
      (
        prev_item IS NULL OR prev_item <> item
      ) AND ys > 0 AND ys_before = 0
  ) AS _p2
  WHERE
    back <= 5
), pairs AS (
  SELECT
    step - 1 AS source_step,
    source,
    step AS target_step,
    item AS target,
    person_id,
    gap
  FROM win
  WHERE
    NOT source IS NULL
  UNION ALL
  SELECT
    step,
    item,
    step + 1,
    'path_end',
    person_id,
    NULL
  FROM win
  WHERE
    is_end
), links AS (
  SELECT
    source_step,
    source,
    target_step,
    target,
    COUNT(*) AS n,
    COUNT(DISTINCT person_id) AS persons,
    MEDIAN(gap) AS median_gap
  FROM pairs
  GROUP BY
    source_step,
    source,
    target_step,
    target
), units AS (
  SELECT
    person_id,
    unit,
    MAX(CASE WHEN source = 'path_start' THEN 1 ELSE 0 END) AS starts,
    MAX(CASE WHEN is_end THEN 1 ELSE 0 END) AS ends,
    CONCAT_WS(
      CHR(31),
      MAX(CASE WHEN step = -4 THEN item END),
      MAX(CASE WHEN step = -3 THEN item END),
      MAX(CASE WHEN step = -2 THEN item END),
      MAX(CASE WHEN step = -1 THEN item END),
      MAX(CASE WHEN step = 0 THEN item END)
    ) AS path
  FROM win
  GROUP BY
    person_id,
    unit
), variants AS (
  SELECT
    starts,
    ends,
    path,
    COUNT(*) AS n,
    COUNT(DISTINCT person_id) AS persons
  FROM units
  GROUP BY
    starts,
    ends,
    path
)
SELECT
  'link' AS kind,
  CAST(source_step AS BIGINT) AS a,
  source AS b,
  CAST(target_step AS BIGINT) AS c,
  target AS d,
  n,
  persons,
  CAST(median_gap AS DOUBLE) AS median_gap,
  out_n AS total
FROM (
  SELECT
    *,
    CAST(SUM(n) OVER (PARTITION BY source_step, source) AS BIGINT) AS out_n
  FROM links
  ORDER BY
    n DESC,
    source_step,
    source,
    target
  LIMIT 50
) AS _links
UNION ALL
SELECT
  'path',
  CAST(starts AS BIGINT),
  path,
  CAST(ends AS BIGINT),
  NULL,
  n,
  persons,
  CAST(NULL AS DOUBLE),
  CAST(NULL AS BIGINT)
FROM (
  SELECT
    *
  FROM variants
  ORDER BY
    n DESC,
    path,
    starts,
    ends
  LIMIT 10
) AS _paths
UNION ALL
SELECT
  'units',
  NULL,
  NULL,
  NULL,
  NULL,
  COUNT(*),
  NULL,
  CAST(NULL AS DOUBLE),
  CAST(NULL AS BIGINT)
FROM units
-- params: ('Order Completed', 'Order Completed', 'Order Completed', 'default', 'default')
