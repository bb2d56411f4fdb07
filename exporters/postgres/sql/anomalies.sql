-- Anomaly inputs per agent and per route, in one pass: the window under test and the
-- trailing baseline, cut into slots of the window's length (whole hours).
-- Rows: part 'test' (slot NULL) or 'base' (slot 0 = the slot just before the test
-- window), dim 'agent' or 'route', key (NULL when unknown), slot, n, n_ok, and the
-- latency of successful calls: from raw rows the exact p50 and p95 (nearest rank),
-- from the rollup the merged histogram (bucket indexes and counts, ascending), whose
-- percentiles the caller interpolates.
-- The test window comes from raw rows when test_from_raw (short windows: [test_start,
-- end) exactly), else from the hourly rollup (the hours from test_start, hour-aligned).
-- The baseline is the hourly rollup over [base_start, base_end), base_end <= test_start:
-- it never includes the window under test.
-- Parameters: test_start, end, test_from_raw, base_start, base_end, slot_seconds.
WITH hours AS MATERIALIZED (
    SELECT ts, agent, route, n, n_ok, lat_idx, lat_cnt,
           CASE WHEN ts >= %(base_end)s THEN NULL
                ELSE ceil(extract(epoch FROM %(base_end)s::timestamptz - ts) / %(slot_seconds)s)::integer - 1
           END AS slot
    FROM route_rollup_hour
    WHERE ts >= %(base_start)s
      AND (ts < %(base_end)s OR (NOT %(test_from_raw)s AND ts >= %(test_start)s AND ts < %(end)s))
), keyed AS (
    SELECT 'agent' AS dim, agent AS key, slot, n, n_ok, lat_idx, lat_cnt FROM hours
    UNION ALL
    SELECT 'route', route, slot, n, n_ok, lat_idx, lat_cnt FROM hours
), totals AS (
    SELECT dim, key, slot, sum(n) AS n, sum(n_ok) AS n_ok FROM keyed GROUP BY dim, key, slot
), bins AS (
    SELECT dim, key, slot, b, sum(c) AS c
    FROM (SELECT dim, key, slot, unnest(lat_idx) AS b, unnest(lat_cnt) AS c FROM keyed) AS u
    GROUP BY dim, key, slot, b
), hists AS (
    SELECT dim, key, slot, array_agg(b ORDER BY b) AS idx, array_agg(c ORDER BY b) AS cnt
    FROM bins
    GROUP BY dim, key, slot
), raw AS (
    SELECT CASE WHEN grouping(agent) = 0 THEN 'agent' ELSE 'route' END AS dim,
           CASE WHEN grouping(agent) = 0 THEN agent ELSE route END AS key,
           count(*) AS n, count(*) FILTER (WHERE ok) AS n_ok,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE ok) AS p50,
           percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE ok) AS p95
    FROM route_observations
    WHERE %(test_from_raw)s AND started_at >= %(test_start)s AND started_at < %(end)s
    GROUP BY GROUPING SETS ((agent), (route))
)
SELECT CASE WHEN t.slot IS NULL THEN 'test' ELSE 'base' END AS part, t.dim, nullif(t.key, '') AS key,
       t.slot, t.n, t.n_ok, NULL::float8 AS p50, NULL::float8 AS p95, h.idx, h.cnt
FROM totals AS t
LEFT JOIN hists AS h ON h.dim = t.dim AND h.key = t.key AND h.slot IS NOT DISTINCT FROM t.slot
WHERE t.n > 0
UNION ALL
SELECT 'test', dim, key, NULL, n, n_ok, p50, p95, NULL, NULL FROM raw
