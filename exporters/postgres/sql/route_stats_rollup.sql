-- Route stats from the rollups (long windows): whole hours from route_rollup_hour
-- (the current, partial hour included: its row is maintained live), the minutes before
-- the first whole hour from route_rollup_minute. Percentiles are nearest-rank over the
-- merged latency histograms, reported as the bucket's representative value (within 2 percent).
-- Parameters: start (minute-aligned), hour_start (first whole hour >= start), end.
WITH parts AS (
    SELECT route, n, n_ok, n_fallback, input_tokens, output_tokens, cost_usd, n_cost,
           lat_idx, lat_cnt, ttft_idx, ttft_cnt
    FROM route_rollup_hour
    WHERE ts >= %(hour_start)s AND ts < %(end)s
    UNION ALL
    SELECT route, n, n_ok, n_fallback, input_tokens, output_tokens, cost_usd, n_cost,
           lat_idx, lat_cnt, ttft_idx, ttft_cnt
    FROM route_rollup_minute
    WHERE ts >= %(start)s AND ts < %(hour_start)s AND ts < %(end)s
), totals AS (
    SELECT route, sum(n) AS n, sum(n_ok) AS n_ok, sum(n_fallback) AS n_fallback,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
           sum(cost_usd) AS cost_usd, sum(n_cost) AS n_cost
    FROM parts
    GROUP BY route
), bins AS (
    SELECT p.route, false AS is_ttft, u.b, sum(u.c) AS c
    FROM parts AS p, unnest(p.lat_idx, p.lat_cnt) AS u(b, c)
    GROUP BY p.route, u.b
    UNION ALL
    SELECT p.route, true, u.b, sum(u.c)
    FROM parts AS p, unnest(p.ttft_idx, p.ttft_cnt) AS u(b, c)
    GROUP BY p.route, u.b
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
