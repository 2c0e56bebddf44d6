WITH win AS MATERIALIZED (
  SELECT
    person_id,
    unit,
    pos AS step,
    item,
    CASE WHEN pos > 1 THEN prev_item WHEN prev_item IS NULL THEN 'path_start' END AS source,
    CASE WHEN pos > 1 THEN gap END AS gap,
    is_last AS is_end
  FROM (
    SELECT
      person_id,
      unit,
      item,
      prev_item,
      gap,
      pos,
      pos = MAX(pos) OVER (PARTITION BY person_id) AS is_last
    FROM (
      SELECT
        person_id,
        unit,
        item,
        prev_item,
        gap,
        ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY rn) AS pos
      FROM (
        SELECT
          *
        FROM (
          SELECT
            person_id,
            unit,
            item,
            ROW_NUMBER() OVER w AS rn,
            LAG(item) OVER w AS prev_item,
            EPOCH(ts) - EPOCH(LAG(ts) OVER w) AS gap,
            COUNT(*) FILTER(WHERE
              item = ?) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS xs
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
        ) AS _p1
        WHERE
          (
            prev_item IS NULL OR prev_item <> item
          ) AND xs >= 1
      ) AS _k
    ) AS _top
    WHERE
      pos <= 5
  ) AS _p2
  WHERE
    pos <= 4
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
    COUNT(*) AS persons,
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
      MAX(CASE WHEN step = 1 THEN item END),
      MAX(CASE WHEN step = 2 THEN item END),
      MAX(CASE WHEN step = 3 THEN item END),
      MAX(CASE WHEN step = 4 THEN item END)
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
    COUNT(*) AS persons
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
-- params: ('Product Added', 'default')
