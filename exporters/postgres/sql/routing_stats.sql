-- Routing decisions per (request model, complexity) over raw rows in [start, end),
-- across every instance that recorded one: volume, success, fallbacks, routing score,
-- latency of successful attempts, cost, and the attempts of each instance.
WITH w AS (
    SELECT request_model, routing_complexity, routing_score, instance_id, ok, fallback,
           duration_ms, cost_usd
    FROM route_observations
    WHERE started_at >= %(start)s AND started_at < %(end)s
      AND routing_complexity IS NOT NULL
),
per_instance AS (
    SELECT request_model, routing_complexity, jsonb_object_agg(instance, n) AS by_instance
    FROM (
        SELECT request_model, routing_complexity, coalesce(instance_id, '') AS instance, count(*) AS n
        FROM w
        GROUP BY request_model, routing_complexity, coalesce(instance_id, '')
    ) AS counted
    GROUP BY request_model, routing_complexity
)
SELECT w.request_model,
       w.routing_complexity,
       count(*) AS n,
       count(*) FILTER (WHERE w.ok) AS n_ok,
       count(*) FILTER (WHERE w.fallback) AS n_fallback,
       avg(w.routing_score) AS mean_score,
       min(w.routing_score) AS min_score,
       max(w.routing_score) AS max_score,
       percentile_disc(ARRAY[0.5, 0.95]::float8[]) WITHIN GROUP (ORDER BY w.duration_ms)
           FILTER (WHERE w.ok) AS latency_ms,
       sum(w.cost_usd) AS cost_usd,
       count(w.cost_usd) AS n_cost,
       count(DISTINCT w.instance_id) AS n_instances,
       p.by_instance
FROM w
JOIN per_instance AS p
  ON p.request_model IS NOT DISTINCT FROM w.request_model
 AND p.routing_complexity = w.routing_complexity
GROUP BY w.request_model, w.routing_complexity, p.by_instance
ORDER BY w.request_model NULLS LAST, w.routing_complexity
