-- Cost totals from raw rows, for any grouping (session, user and tag need raw rows).
-- A dimension not asked for (its g_ flag false, or tag_key NULL) collapses to NULL.
-- period is 'day', 'month' or NULL (the whole interval), in the session's time zone,
-- which the caller sets to UTC for the transaction.
-- Parameters: start, end (the half-open interval [start, end)), period, g_agent,
-- g_model, g_provider, g_route, g_operation, g_session, g_user, tag_key.
SELECT CASE WHEN %(period)s::text IS NOT NULL THEN date_trunc(%(period)s::text, started_at) END AS period,
       CASE WHEN %(g_agent)s THEN agent END AS agent,
       CASE WHEN %(g_model)s THEN request_model END AS model,
       CASE WHEN %(g_provider)s THEN provider END AS provider,
       CASE WHEN %(g_route)s THEN route END AS route,
       CASE WHEN %(g_operation)s THEN operation END AS operation,
       CASE WHEN %(g_session)s THEN session_id END AS session,
       CASE WHEN %(g_user)s THEN user_id END AS "user",
       tags ->> %(tag_key)s::text AS tag,
       count(*) AS n,
       count(cost_usd) AS n_cost,
       coalesce(sum(cost_usd), 0) AS cost_usd,
       coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
       coalesce(sum(cached_input_tokens), 0)::bigint AS cached_input_tokens,
       coalesce(sum(cache_creation_input_tokens), 0)::bigint AS cache_creation_input_tokens,
       coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
       coalesce(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens
FROM route_observations
WHERE started_at >= %(start)s AND started_at < %(end)s
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
ORDER BY 1 NULLS FIRST, sum(cost_usd) DESC NULLS LAST, 2, 3, 4, 5, 6, 7, 8, 9
