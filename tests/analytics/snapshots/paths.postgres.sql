WITH path_names AS (
  SELECT
    raw_item,
    item,
    ROW_NUMBER() OVER (ORDER BY raw_item) AS rc,
    DENSE_RANK() OVER (ORDER BY item) AS ic,
    FALSE AS at_start,
    FALSE AS at_end
  FROM (
    SELECT
      *
    FROM (
      SELECT
        raw_item,
        CASE WHEN raw_item ~ %s THEN %s ELSE raw_item END AS item
      FROM (
        SELECT DISTINCT
          CASE
            WHEN event IN ('$page', '$screen') AND NOT page_path IS NULL
            THEN page_path
            ELSE event
          END AS raw_item
        FROM events
        WHERE
          workspace_id = %s AND TRUE AND TRUE
      ) AS _d
    ) AS _x
    WHERE
      NOT raw_item IN (%s) AND NOT item IN (%s)
  ) AS _n
), all_names AS (
  SELECT DISTINCT
    ic,
    item
  FROM path_names
  UNION ALL
  SELECT
    -1,
    'path_start'
  UNION ALL
  SELECT
    -2,
    'path_end'
), win AS MATERIALIZED (
  SELECT
    person_id,
    unit,
    pos AS step,
    item,
    CASE WHEN pos = 1 THEN -1 ELSE prev_item END AS source,
    CASE WHEN pos = 1 THEN NULL ELSE gap END AS gap,
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
            at_start,
            at_end,
            ROW_NUMBER() OVER w AS rn,
            LAG(item) OVER w AS prev_item,
            DATE_PART('epoch', ts) - DATE_PART('epoch', LAG(ts) OVER w) AS gap
          FROM (
            SELECT
              _u.person_id,
              _u.unit,
              _u.ts,
              _c.rc,
              _c.ic AS item,
              _c.at_start,
              _c.at_end
            FROM (
              SELECT
                HASH(person_id) AS person_id,
                '' AS unit,
                ts,
                raw_item
              FROM (
                SELECT
                  person_id,
                  session_id,
                  "timestamp" AS ts,
                  CASE
                    WHEN event IN ('$page', '$screen') AND NOT page_path IS NULL
                    THEN page_path
                    ELSE event
                  END AS raw_item
                FROM events
                WHERE
                  workspace_id = %s AND TRUE AND TRUE
              ) AS _b
            ) AS _u
            JOIN path_names AS _c
              ON _c.raw_item = _u.raw_item
          ) AS _i
          WINDOW w AS (PARTITION BY person_id ORDER BY ts, rc)
        ) AS _p1
        WHERE
          (
            prev_item IS NULL OR prev_item <> item
          )
      ) AS _k
    ) AS _top
    WHERE
      pos <= 6
  ) AS _p2
  WHERE
    pos <= 5
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
    -2,
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
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY
      gap) AS median_gap
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
    MAX(CASE WHEN source = -1 THEN 1 ELSE 0 END) AS starts,
    MAX(CASE WHEN is_end THEN 1 ELSE 0 END) AS ends,
    MAX(CASE WHEN step = 1 THEN item END) AS s1,
    MAX(CASE WHEN step = 2 THEN item END) AS s2,
    MAX(CASE WHEN step = 3 THEN item END) AS s3,
    MAX(CASE WHEN step = 4 THEN item END) AS s4,
    MAX(CASE WHEN step = 5 THEN item END) AS s5
  FROM win
  GROUP BY
    person_id,
    unit
), variants AS (
  SELECT
    starts,
    ends,
    s1,
    s2,
    s3,
    s4,
    s5,
    COUNT(*) AS n,
    COUNT(*) AS persons
  FROM units
  GROUP BY
    starts,
    ends,
    s1,
    s2,
    s3,
    s4,
    s5
), named AS (
  SELECT
    v.starts,
    v.ends,
    v.n,
    v.persons,
    CONCAT_WS(CHR(  31), n1.item, n2.item, n3.item, n4.item, n5.item) AS path
  FROM variants AS v
  LEFT JOIN all_names AS n1
    ON n1.ic = v.s1
  LEFT JOIN all_names AS n2
    ON n2.ic = v.s2
  LEFT JOIN all_names AS n3
    ON n3.ic = v.s3
  LEFT JOIN all_names AS n4
    ON n4.ic = v.s4
  LEFT JOIN all_names AS n5
    ON n5.ic = v.s5
)
SELECT
  'link' AS kind,
  CAST(source_step AS BIGINT) AS a,
  source_name AS b,
  CAST(target_step AS BIGINT) AS c,
  target_name AS d,
  n,
  persons,
  CAST(median_gap AS DOUBLE PRECISION) AS median_gap,
  out_n AS total
FROM (
  SELECT
    l.*,
    sn.item AS source_name,
    tn.item AS target_name,
    CAST(SUM(l.n) OVER (PARTITION BY l.source_step, l.source) AS BIGINT) AS out_n
  FROM links AS l
  JOIN all_names AS sn
    ON sn.ic = l.source
  JOIN all_names AS tn
    ON tn.ic = l.target
  ORDER BY
    l.n DESC NULLS LAST,
    l.source_step,
    sn.item,
    tn.item
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
  CAST(NULL AS DOUBLE PRECISION),
  CAST(NULL AS BIGINT)
FROM (
  SELECT
    *
  FROM named
  ORDER BY
    n DESC NULLS LAST,
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
  CAST(NULL AS DOUBLE PRECISION),
  CAST(NULL AS BIGINT)
FROM units
-- params: ('^(?:/product/.*)$', 'product_view', 'default', '$identify', '$identify', 'default')
