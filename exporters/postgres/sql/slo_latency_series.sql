-- Latency percentiles of successful calls per agent (or route) per hour or day, from
-- the hourly rollup: what a chart draws against an SLO's latency threshold.
-- Nearest rank over merged histograms (within 2 percent).
-- Parameters: by ('agent' or 'route'), step ('hour' or 'day', UTC), start, end (the hours
-- [start, end) are read, whole), keys (text[], or NULL for every key).
WITH parts AS MATERIALIZED (
    SELECT date_trunc(%(step)s, ts, 'UTC') AS bucket_ts,
           CASE WHEN %(by)s = 'route' THEN route ELSE agent END AS key,
           n, n_ok, lat_idx, lat_cnt
    FROM route_rollup_hour
    WHERE ts >= %(start)s AND ts < %(end)s
), chosen AS MATERIALIZED (
    SELECT * FROM parts
    WHERE %(keys)s::text[] IS NULL OR nullif(key, '') = ANY(%(keys)s::text[])
), totals AS (
    SELECT bucket_ts, key, sum(n) AS n, sum(n_ok) AS n_ok FROM chosen GROUP BY bucket_ts, key
), bins AS (
    SELECT bucket_ts, key, b, sum(c) AS c
    FROM (SELECT bucket_ts, key, unnest(lat_idx) AS b, unnest(lat_cnt) AS c FROM chosen) AS u
    GROUP BY bucket_ts, key, b
), ranked AS (
    SELECT bucket_ts, key, b,
           sum(c) OVER (PARTITION BY bucket_ts, key ORDER BY b) AS cum,
           sum(c) OVER (PARTITION BY bucket_ts, key) AS total
    FROM bins
), quantiles AS (
    SELECT bucket_ts, key,
           ARRAY[hist_value(min(b) FILTER (WHERE cum >= 0.50 * total)),
                 hist_value(min(b) FILTER (WHERE cum >= 0.95 * total)),
                 hist_value(min(b) FILTER (WHERE cum >= 0.99 * total))] AS q
    FROM ranked
    GROUP BY bucket_ts, key
)
SELECT nullif(t.key, '') AS key, t.bucket_ts, t.n, t.n_ok, q.q
FROM totals AS t
LEFT JOIN quantiles AS q ON q.bucket_ts = t.bucket_ts AND q.key = t.key
WHERE t.n > 0
ORDER BY nullif(t.key, '') NULLS LAST, t.bucket_ts
