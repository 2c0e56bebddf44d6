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
      raw_item,
      raw_item AS item
    FROM (
      SELECT DISTINCT
        CASE
          WHEN event IN ('$page', '$screen') AND NOT page_path IS NULL
          THEN page_path
          ELSE event
        END AS raw_item
      FROM events
      WHERE
        workspace_id = ? AND TRUE AND TRUE
    ) AS _d
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
), seq AS MATERIALIZED (
  SELECT
    person_id,
    item,
    LAG(item) OVER w AS prev_item,
    EPOCH(ts) - EPOCH(LAG(ts) OVER w) AS gap,
    LEAD(item) OVER w IS NULL AS is_last
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
          workspace_id = ? AND TRUE AND TRUE
      ) AS _b
    ) AS _u
    JOIN path_names AS _c
      ON _c.raw_item = _u.raw_item
  ) AS _i
  WINDOW w AS (PARTITION BY person_id ORDER BY ts, rc)
), edges AS (
  SELECT
    COALESCE(prev_item, -1) AS source,
    item AS target,
    person_id,
    gap
  FROM seq
  WHERE
    TRUE
  UNION ALL
  SELECT
    item AS source,
    -2 AS target,
    person_id,
    NULL AS gap
  FROM seq
  WHERE
    is_last
), counted AS (
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
)
SELECT
  s.item AS source_name,
  t.item AS target_name,
  c.n,
  c.persons,
  c.median_gap
FROM counted AS c
JOIN all_names AS s
  ON s.ic = c.source
JOIN all_names AS t
  ON t.ic = c.target
ORDER BY
  c.n DESC,
  s.item,
  t.item
-- params: ('default', 'default')
