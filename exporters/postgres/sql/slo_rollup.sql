-- SLO events in long windows, from the rollups: per (selection, window) the number of
-- events, of successful ones, and the merged latency histogram of the successful ones
-- (bucket indexes ascending, counts), from which the caller counts the events at or
-- below a latency threshold and reads percentiles. A selection is the calls of an
-- agent and/or route (NULL matches any); windows as in slo_raw.sql.
--
-- Each window [start, end) is read at minute resolution: the whole hours from the
-- hour rollup, the minutes before its first whole hour and those of the current hour
-- from the minute rollup.
-- Parameters: sel_id, sel_agent, sel_route; win_id, win_start (minute-aligned), win_hour (the
-- first whole hour of the window); hour_from (the earliest win_hour), end_hour (the
-- start of the hour holding end), end.
WITH sel AS (
    SELECT s.*
    FROM unnest(%(sel_id)s::integer[], %(sel_agent)s::text[], %(sel_route)s::text[]) AS s(id, agent, route)
), win AS (
    SELECT *
    FROM unnest(%(win_id)s::integer[], %(win_start)s::timestamptz[], %(win_hour)s::timestamptz[])
        AS w(id, start, hour_start)
), hours AS MATERIALIZED (
    SELECT ts, agent, route, n, n_ok, lat_idx, lat_cnt
    FROM route_rollup_hour
    WHERE ts >= %(hour_from)s AND ts < %(end_hour)s
), parts AS (
    SELECT w.id AS win, h.agent, h.route, h.n, h.n_ok, h.lat_idx, h.lat_cnt
    FROM win AS w JOIN hours AS h ON h.ts >= w.hour_start
    UNION ALL
    -- Each range of minutes read on its own (the key starts with ts): one condition
    -- with OR over all of them may make the planner scan the whole minute rollup.
    SELECT w.id, m.agent, m.route, m.n, m.n_ok, m.lat_idx, m.lat_cnt
    FROM win AS w
    CROSS JOIN LATERAL (SELECT * FROM route_rollup_minute AS r
                        WHERE r.ts >= w.start AND r.ts < w.hour_start) AS m
    UNION ALL
    SELECT w.id, m.agent, m.route, m.n, m.n_ok, m.lat_idx, m.lat_cnt
    FROM win AS w
    CROSS JOIN (SELECT * FROM route_rollup_minute AS r
                WHERE r.ts >= %(end_hour)s AND r.ts < %(end)s) AS m
), matched AS MATERIALIZED (
    SELECT s.id AS sel, p.win, p.n, p.n_ok, p.lat_idx, p.lat_cnt
    FROM parts AS p
    JOIN sel AS s
      ON (s.agent IS NULL OR p.agent = s.agent) AND (s.route IS NULL OR p.route = s.route)
), totals AS (
    SELECT sel, win, sum(n) AS n, sum(n_ok) AS n_ok FROM matched GROUP BY sel, win
), bins AS (
    SELECT sel, win, b, sum(c) AS c
    FROM (SELECT sel, win, unnest(lat_idx) AS b, unnest(lat_cnt) AS c FROM matched) AS u
    GROUP BY sel, win, b
), hists AS (
    SELECT sel, win, array_agg(b ORDER BY b) AS idx, array_agg(c ORDER BY b) AS cnt
    FROM bins
    GROUP BY sel, win
)
SELECT t.sel, t.win, t.n, t.n_ok, h.idx, h.cnt
FROM totals AS t
LEFT JOIN hists AS h ON h.sel = t.sel AND h.win = t.win
WHERE t.n > 0
