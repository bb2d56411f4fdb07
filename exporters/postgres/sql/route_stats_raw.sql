-- Route stats over raw rows (short windows): exact nearest-rank percentiles.
-- Parameters: start, end (timestamptz), the half-open window [start, end).
SELECT route,
       count(*) AS n,
       count(*) FILTER (WHERE ok) AS n_ok,
       count(*) FILTER (WHERE fallback) AS n_fallback,
       percentile_disc(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY duration_ms)
           FILTER (WHERE ok) AS latency_ms,
       percentile_disc(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY ttft_ms)
           FILTER (WHERE ok AND ttft_ms IS NOT NULL) AS ttft_ms,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       sum(cost_usd) AS cost_usd,
       count(cost_usd) AS n_cost
FROM route_observations
WHERE started_at >= %(start)s AND started_at < %(end)s
GROUP BY route
ORDER BY n DESC, route NULLS LAST
