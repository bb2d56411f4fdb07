-- Cost totals from the rollups, for groupings the rollups keep (agent, model, provider,
-- route, operation): whole hours from route_rollup_hour, the edge minutes before the
-- first and after the last whole hour from route_rollup_minute.
-- A dimension not asked for (its g_ flag false) collapses to NULL; '' (unknown) reads
-- as NULL too. period is 'day', 'month' or NULL (the whole interval), in UTC.
-- Parameters: start, end (minute-aligned), hour_start, hour_end (whole hours inside
-- [start, end); equal when there is none), period, g_agent, g_model, g_provider,
-- g_route, g_operation.
WITH parts AS (
    SELECT ts, route, agent, request_model, provider, operation, n, n_cost, cost_usd,
           input_tokens, cached_input_tokens, output_tokens, reasoning_tokens
    FROM route_rollup_hour
    WHERE ts >= %(hour_start)s AND ts < %(hour_end)s
    UNION ALL
    SELECT ts, route, agent, request_model, provider, operation, n, n_cost, cost_usd,
           input_tokens, cached_input_tokens, output_tokens, reasoning_tokens
    FROM route_rollup_minute
    WHERE (ts >= %(start)s AND ts < %(hour_start)s)
       OR (ts >= %(hour_end)s AND ts < %(end)s)
)
SELECT CASE WHEN %(period)s::text IS NOT NULL THEN date_trunc(%(period)s::text, ts, 'UTC') END AS period,
       CASE WHEN %(g_agent)s THEN nullif(agent, '') END AS agent,
       CASE WHEN %(g_model)s THEN nullif(request_model, '') END AS model,
       CASE WHEN %(g_provider)s THEN nullif(provider, '') END AS provider,
       CASE WHEN %(g_route)s THEN nullif(route, '') END AS route,
       CASE WHEN %(g_operation)s THEN nullif(operation, '') END AS operation,
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
FROM parts
GROUP BY 1, 2, 3, 4, 5, 6
HAVING sum(n) > 0
ORDER BY 1 NULLS FIRST, sum(cost_usd) DESC, 2, 3, 4, 5, 6
