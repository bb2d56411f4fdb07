-- SLO events in short windows, from raw rows: per (selection, window) the number of
-- events and of good ones, exactly. A selection is one objective of one SLO: its agent
-- and/or route (NULL matches any) and, for a latency objective, its threshold (good =
-- ok AND duration_ms <= threshold; NULL threshold: good = ok). All windows end at
-- %(end)s; a window covers [start, end).
-- Parameters: sel_id, sel_agent, sel_route, sel_threshold (arrays, one per selection),
-- win_id, win_start (arrays, one per window), start (the earliest window start), end.
WITH sel AS (
    SELECT *
    FROM unnest(%(sel_id)s::integer[], %(sel_agent)s::text[], %(sel_route)s::text[],
                %(sel_threshold)s::float8[]) AS s(id, agent, route, threshold_ms)
), win AS (
    SELECT * FROM unnest(%(win_id)s::integer[], %(win_start)s::timestamptz[]) AS w(id, start)
), rows AS MATERIALIZED (
    SELECT started_at, agent, route, ok, duration_ms
    FROM route_observations
    WHERE started_at >= %(start)s AND started_at < %(end)s
)
SELECT s.id AS sel, w.id AS win,
       count(*) AS n,
       count(*) FILTER (WHERE r.ok AND (s.threshold_ms IS NULL OR r.duration_ms <= s.threshold_ms)) AS good
FROM sel AS s
JOIN rows AS r ON (s.agent IS NULL OR r.agent = s.agent) AND (s.route IS NULL OR r.route = s.route)
JOIN win AS w ON r.started_at >= w.start
GROUP BY s.id, w.id
