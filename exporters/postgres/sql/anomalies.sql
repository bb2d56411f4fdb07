-- Anomaly inputs per agent and per route, in one pass: the window under test and the
-- trailing baseline, cut into slots of the window's length (whole hours).
-- Rows: part 'test' (slot NULL) or 'base' (slot 0 = the slot just before the test
-- window), dim 'agent' or 'route', key (NULL when unknown), slot, n, n_ok, and the
-- p50 and p95 latency of successful calls (nearest rank; from raw rows exactly, from
-- rollup histograms within 2 percent).
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
), ranked AS (
    SELECT dim, key, slot, b,
           sum(c) OVER (PARTITION BY dim, key, slot ORDER BY b) AS cum,
           sum(c) OVER (PARTITION BY dim, key, slot) AS total
    FROM bins
), quantiles AS (
    SELECT dim, key, slot,
           hist_value(min(b) FILTER (WHERE cum >= 0.50 * total)) AS p50,
           hist_value(min(b) FILTER (WHERE cum >= 0.95 * total)) AS p95
    FROM ranked
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
       t.slot, t.n, t.n_ok, q.p50, q.p95
FROM totals AS t
LEFT JOIN quantiles AS q ON q.dim = t.dim AND q.key = t.key AND q.slot IS NOT DISTINCT FROM t.slot
WHERE t.n > 0
UNION ALL
SELECT 'test', dim, key, NULL, n, n_ok, p50, p95 FROM raw
