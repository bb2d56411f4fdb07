-- Latency of successful calls per agent (or route) per hour or day: the hourly rollup
-- rows of the period, keyed and bucketed, with their histograms as stored (bucket
-- indexes and counts in no order, a bucket possibly repeated). The caller adds them up
-- per (key, hour or day) and reads percentiles: what a chart draws against an SLO's
-- latency threshold. (Merging histograms here would sort every bucket entry of the
-- period; numpy adds them up in a fraction of the time.)
-- Parameters: by ('agent' or 'route'), step ('hour' or 'day', UTC), start, end (the
-- hours [start, end) are read, whole), keys (text[], or NULL for every key).
SELECT nullif(CASE WHEN %(by)s = 'route' THEN route ELSE agent END, '') AS key,
       date_trunc(%(step)s, ts, 'UTC') AS bucket_ts, n, n_ok, lat_idx, lat_cnt
FROM route_rollup_hour
WHERE ts >= %(start)s AND ts < %(end)s
  AND (%(keys)s::text[] IS NULL
       OR nullif(CASE WHEN %(by)s = 'route' THEN route ELSE agent END, '') = ANY(%(keys)s::text[]))
