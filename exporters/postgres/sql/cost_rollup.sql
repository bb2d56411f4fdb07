-- Cost totals from the rollups, for groupings the rollups keep (agent, model, provider,
-- route, operation): whole hours from route_rollup_hour, the edge minutes before the
-- first and after the last whole hour from route_rollup_minute.
-- A dimension not asked for (its g_ flag false) collapses to NULL; '' (unknown) reads
-- as NULL too. period is 'day', 'month' or NULL (the whole interval), in UTC: rows are
-- grouped by UTC day with date_bin (plain arithmetic, a fraction of date_trunc's cost per
-- row), and days into months (date_trunc in the session's time zone, which the caller
-- sets to UTC for the transaction) only on the few grouped rows.
-- Parameters: start, end (minute-aligned), hour_start, hour_end (whole hours inside
-- [start, end); equal when there is none), period, g_agent, g_model, g_provider,
-- g_route, g_operation.
-- Each table is aggregated on its own (no row-by-row union in front of the big one),
-- then the two partial results, a few rows each, are added up.
WITH hours AS (
    SELECT CASE WHEN %(period)s::text IS NOT NULL THEN date_bin('1 day', ts, TIMESTAMPTZ '2000-01-01 00:00+00') END AS day,
           CASE WHEN %(g_agent)s THEN nullif(agent, '') END AS agent,
           CASE WHEN %(g_model)s THEN nullif(request_model, '') END AS model,
           CASE WHEN %(g_provider)s THEN nullif(provider, '') END AS provider,
           CASE WHEN %(g_route)s THEN nullif(route, '') END AS route,
           CASE WHEN %(g_operation)s THEN nullif(operation, '') END AS operation,
           sum(n) AS n, sum(n_cost) AS n_cost, sum(cost_usd) AS cost_usd,
           sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS cached_input_tokens,
           sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens
    FROM route_rollup_hour
    WHERE ts >= %(hour_start)s AND ts < %(hour_end)s
    GROUP BY 1, 2, 3, 4, 5, 6
), minutes AS (
    SELECT CASE WHEN %(period)s::text IS NOT NULL THEN date_bin('1 day', ts, TIMESTAMPTZ '2000-01-01 00:00+00') END AS day,
           CASE WHEN %(g_agent)s THEN nullif(agent, '') END AS agent,
           CASE WHEN %(g_model)s THEN nullif(request_model, '') END AS model,
           CASE WHEN %(g_provider)s THEN nullif(provider, '') END AS provider,
           CASE WHEN %(g_route)s THEN nullif(route, '') END AS route,
           CASE WHEN %(g_operation)s THEN nullif(operation, '') END AS operation,
           sum(n) AS n, sum(n_cost) AS n_cost, sum(cost_usd) AS cost_usd,
           sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS cached_input_tokens,
           sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens
    FROM route_rollup_minute
    WHERE (ts >= %(start)s AND ts < %(hour_start)s)
       OR (ts >= %(hour_end)s AND ts < %(end)s)
    GROUP BY 1, 2, 3, 4, 5, 6
)
SELECT CASE WHEN %(period)s::text = 'month' THEN date_trunc('month', day) ELSE day END AS period,
       agent, model, provider, route, operation,
       NULL::text AS session,
       NULL::text AS "user",
       NULL::text AS tag,
       sum(n)::bigint AS n,
       sum(n_cost)::bigint AS n_cost,
       sum(cost_usd) AS cost_usd,
       sum(input_tokens)::bigint AS input_tokens,
       sum(cached_input_tokens)::bigint AS cached_input_tokens,
       NULL::bigint AS cache_creation_input_tokens,
       sum(output_tokens)::bigint AS output_tokens,
       sum(reasoning_tokens)::bigint AS reasoning_tokens
FROM (SELECT * FROM hours UNION ALL SELECT * FROM minutes) AS parts
GROUP BY 1, 2, 3, 4, 5, 6
HAVING sum(n) > 0
ORDER BY 1 NULLS FIRST, sum(cost_usd) DESC, 2, 3, 4, 5, 6
