-- Provider health over raw rows in [start, end): volume, success, latency of successful
-- attempts (exact nearest-rank p50/p95), and what the circuit rule reads — the length
-- of the trailing run of failures (failures after the provider's latest success) and
-- the newest %(recent)s outcomes, newest first.
WITH w AS (
    SELECT provider, started_at, span_id, ok, duration_ms
    FROM route_observations
    WHERE started_at >= %(start)s AND started_at < %(end)s
),
totals AS (
    SELECT provider,
           count(*) AS n,
           count(*) FILTER (WHERE ok) AS n_ok,
           percentile_disc(ARRAY[0.5, 0.95]::float8[]) WITHIN GROUP (ORDER BY duration_ms)
               FILTER (WHERE ok) AS latency_ms,
           max(started_at) AS last_at,
           max(started_at) FILTER (WHERE ok) AS last_ok_at,
           max(started_at) FILTER (WHERE NOT ok) AS last_failure_at
    FROM w
    GROUP BY provider
),
recent AS (
    SELECT provider, array_agg(ok ORDER BY rn) AS recent_ok
    FROM (
        SELECT provider, ok,
               row_number() OVER (PARTITION BY provider ORDER BY started_at DESC, span_id DESC) AS rn
        FROM w
    ) AS ranked
    WHERE rn <= %(recent)s
    GROUP BY provider
)
SELECT t.provider, t.n, t.n_ok, t.latency_ms, t.last_at, t.last_ok_at, t.last_failure_at,
       (SELECT count(*) FROM w
        WHERE w.provider IS NOT DISTINCT FROM t.provider AND NOT w.ok
          AND w.started_at > coalesce(t.last_ok_at, '-infinity'::timestamptz)) AS failure_run,
       r.recent_ok
FROM totals AS t
JOIN recent AS r ON r.provider IS NOT DISTINCT FROM t.provider
ORDER BY t.n DESC, t.provider NULLS LAST
