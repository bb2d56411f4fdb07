-- Latency of successful calls per agent (or route) per hour or day, from the hourly
-- rollup, as merged histograms (bucket indexes ascending, counts) whose percentiles
-- the caller reads: what a chart draws against an SLO's latency threshold.
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
), hists AS (
    SELECT bucket_ts, key, array_agg(b ORDER BY b) AS idx, array_agg(c ORDER BY b) AS cnt
    FROM bins
    GROUP BY bucket_ts, key
)
SELECT nullif(t.key, '') AS key, t.bucket_ts, t.n, t.n_ok, h.idx, h.cnt
FROM totals AS t
LEFT JOIN hists AS h ON h.bucket_ts = t.bucket_ts AND h.key = t.key
WHERE t.n > 0
ORDER BY nullif(t.key, '') NULLS LAST, t.bucket_ts
