-- Token sums for "what these calls would have cost on another model": per day (in the
-- session's time zone, which the caller sets to UTC)
-- (price periods change on dates), group, and the baseline's input-size tier, with each
-- call's counts first put in the price library's terms, as processor.pricing does:
-- input includes cache reads and writes (added when a source left them out), output
-- includes reasoning (added for providers that count it apart, or when it exceeds the
-- output). Calls without a known cost or without token counts are counted apart
-- (comparable = false).
-- Parameters: start, end, thresholds (the baseline's tier starts, ascending),
-- reasoning_excluded (provider names), g_agent, g_model, g_provider, g_route,
-- g_operation, g_session, g_user, tag_key.
WITH calls AS (
    SELECT started_at, agent, request_model, provider, route, operation, session_id, user_id, tags, cost_usd,
           cost_usd IS NOT NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL) AS comparable,
           CASE WHEN coalesce(cached_input_tokens, 0) + coalesce(cache_creation_input_tokens, 0)
                     > coalesce(input_tokens, 0)
                THEN coalesce(input_tokens, 0) + coalesce(cached_input_tokens, 0)
                     + coalesce(cache_creation_input_tokens, 0)
                ELSE coalesce(input_tokens, 0) END AS inp,
           coalesce(cached_input_tokens, 0) AS cache_read,
           coalesce(cache_creation_input_tokens, 0) AS cache_write,
           CASE WHEN coalesce(reasoning_tokens, 0) > 0
                     AND (reasoning_tokens > coalesce(output_tokens, 0)
                          OR provider = ANY(%(reasoning_excluded)s::text[]))
                THEN coalesce(output_tokens, 0) + reasoning_tokens
                ELSE coalesce(output_tokens, 0) END AS outp,
           coalesce(reasoning_tokens, 0) AS reasoning
    FROM route_observations
    WHERE started_at >= %(start)s AND started_at < %(end)s
)
SELECT date_trunc('day', started_at) AS day,
       CASE WHEN %(g_agent)s THEN agent END AS agent,
       CASE WHEN %(g_model)s THEN request_model END AS model,
       CASE WHEN %(g_provider)s THEN provider END AS provider,
       CASE WHEN %(g_route)s THEN route END AS route,
       CASE WHEN %(g_operation)s THEN operation END AS operation,
       CASE WHEN %(g_session)s THEN session_id END AS session,
       CASE WHEN %(g_user)s THEN user_id END AS "user",
       tags ->> %(tag_key)s::text AS tag,
       comparable,
       width_bucket(inp - 1, %(thresholds)s::bigint[]) AS tier,
       count(*) AS calls,
       coalesce(sum(cost_usd), 0) AS cost_usd,
       sum(inp)::bigint AS inp, sum(cache_read)::bigint AS cache_read, sum(cache_write)::bigint AS cache_write,
       sum(outp)::bigint AS outp, sum(reasoning)::bigint AS reasoning
FROM calls
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
