-- Tool use per route over raw rows in [start, end): of the successful attempts that
-- offered tools, how many said how many tool calls they made (tool_calls not NULL),
-- how many made at least one, and the tool calls in all.
SELECT route,
       count(*) AS offered,
       count(tool_calls) AS offered_known,
       count(*) FILTER (WHERE tool_calls > 0) AS with_tool_calls,
       coalesce(sum(tool_calls), 0) AS tool_calls,
       max(tools_offered) AS max_tools_offered,
       max(started_at) AS last_offered_at
FROM route_observations
WHERE started_at >= %(start)s AND started_at < %(end)s
  AND ok AND tools_offered > 0
GROUP BY route
ORDER BY offered DESC, route NULLS LAST
