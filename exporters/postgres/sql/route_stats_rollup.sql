-- Route stats from the per-route hourly rollup (long windows): every hour from the one
-- containing the window's start up to now (the current hour's row is maintained live).
-- Percentiles are nearest-rank over the merged histograms, reported as the bucket's
-- representative value (within 2 percent of exact).
-- Parameters: start (hour-aligned), end.
WITH parts AS MATERIALIZED (
    SELECT route, n, n_ok, n_fallback, input_tokens, output_tokens, cost_usd, n_cost,
           lat_idx, lat_cnt, ttft_idx, ttft_cnt
    FROM route_stats_hour
    WHERE ts >= %(start)s AND ts < %(end)s
), totals AS (
    SELECT route, sum(n) AS n, sum(n_ok) AS n_ok, sum(n_fallback) AS n_fallback,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
           sum(cost_usd) AS cost_usd, sum(n_cost) AS n_cost
    FROM parts
    GROUP BY route
), bins AS (
    -- unnest() in the select list (lock-step over the two arrays) is several times
    -- cheaper than a function scan in FROM, which materialises every call.
    SELECT route, false AS is_ttft, b, sum(c) AS c
    FROM (SELECT route, unnest(lat_idx) AS b, unnest(lat_cnt) AS c FROM parts) AS u
    GROUP BY route, b
    UNION ALL
    SELECT route, true, b, sum(c)
    FROM (SELECT route, unnest(ttft_idx) AS b, unnest(ttft_cnt) AS c FROM parts) AS u
    GROUP BY route, b
), ranked AS (
    SELECT route, is_ttft, b,
           sum(c) OVER (PARTITION BY route, is_ttft ORDER BY b) AS cum,
           sum(c) OVER (PARTITION BY route, is_ttft) AS total
    FROM bins
), quantiles AS (
    SELECT route, is_ttft,
           ARRAY[hist_value(min(b) FILTER (WHERE cum >= 0.50 * total)),
                 hist_value(min(b) FILTER (WHERE cum >= 0.95 * total)),
                 hist_value(min(b) FILTER (WHERE cum >= 0.99 * total))] AS q
    FROM ranked
    GROUP BY route, is_ttft
)
SELECT nullif(t.route, '') AS route, t.n, t.n_ok, t.n_fallback,
       lq.q AS latency_ms, tq.q AS ttft_ms,
       t.input_tokens, t.output_tokens,
       CASE WHEN t.n_cost > 0 THEN t.cost_usd END AS cost_usd, t.n_cost
FROM totals AS t
LEFT JOIN quantiles AS lq ON lq.route = t.route AND NOT lq.is_ttft
LEFT JOIN quantiles AS tq ON tq.route = t.route AND tq.is_ttft
WHERE t.n > 0
ORDER BY t.n DESC, nullif(t.route, '') NULLS LAST
