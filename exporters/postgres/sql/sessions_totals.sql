-- Sessions with attempts in [start, end) (raw rows), most recently active first: totals
-- over those attempts, the owner (agent of the first attempt that names one) and the
-- hot route (route of the latest successful attempt). session = NULL means every session.
SELECT session_id,
       count(*) AS n,
       count(*) FILTER (WHERE ok) AS n_ok,
       count(*) FILTER (WHERE fallback) AS n_fallback,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       sum(cost_usd) AS cost_usd,
       count(cost_usd) AS n_cost,
       min(started_at) AS first_at,
       max(started_at) AS last_at,
       (array_agg(agent ORDER BY started_at, span_id) FILTER (WHERE agent IS NOT NULL))[1] AS owner,
       (array_agg(route ORDER BY started_at DESC, span_id DESC) FILTER (WHERE ok AND route IS NOT NULL))[1]
           AS hot_route,
       count(DISTINCT agent) AS n_agents,
       count(DISTINCT route) AS n_routes,
       count(DISTINCT user_id) AS n_users
FROM route_observations
WHERE started_at >= %(start)s AND started_at < %(end)s
  AND session_id IS NOT NULL
  AND (%(session)s::text IS NULL OR session_id = %(session)s::text)
GROUP BY session_id
ORDER BY last_at DESC, session_id
LIMIT %(limit)s
