-- Anomaly inputs, in one pass: the hourly rollup rows of the trailing baseline (and of
-- the window under test when it is long), and, for a short window under test, its
-- exact figures per agent and per route from raw rows.
-- Rows of part 'hour': ts, agent, route ('' when unknown), n, n_ok and the latency
-- histogram of successful calls (bucket indexes and counts, as stored: in no order, a
-- bucket possibly repeated). The caller groups them per agent and per route into
-- slots: merging histograms here would sort hundreds of thousands of bucket entries,
-- where numpy adds them up in a fraction of the time.
-- Rows of part 'test' (when test_from_raw): dim 'agent' or 'route', key, n, n_ok and
-- the exact p50 and p95 latency of successful calls (nearest rank) over
-- [test_start, end).
-- The baseline is [base_start, base_end) with base_end <= test_start: it never
-- includes the window under test. A long window under test is read from the hours of
-- [test_start, end) (test_start hour-aligned).
-- Parameters: test_start, end, test_from_raw, base_start, base_end.
SELECT 'hour' AS part, NULL AS dim, ts, agent, route, n, n_ok,
       NULL::float8 AS p50, NULL::float8 AS p95, lat_idx, lat_cnt
FROM route_rollup_hour
WHERE ts >= %(base_start)s
  AND (ts < %(base_end)s OR (NOT %(test_from_raw)s AND ts >= %(test_start)s AND ts < %(end)s))
UNION ALL
SELECT 'test', CASE WHEN grouping(agent) = 0 THEN 'agent' ELSE 'route' END, NULL,
       CASE WHEN grouping(agent) = 0 THEN agent END, CASE WHEN grouping(route) = 0 THEN route END,
       count(*), count(*) FILTER (WHERE ok),
       percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE ok),
       percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE ok),
       NULL, NULL
FROM route_observations
WHERE %(test_from_raw)s AND started_at >= %(test_start)s AND started_at < %(end)s
GROUP BY GROUPING SETS ((agent), (route))
