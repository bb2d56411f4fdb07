-- Apply new costs to raw rows and the same differences to the rollups' cost sums, in
-- one statement (run in one transaction per chunk). Only rows whose values really
-- change are touched, so applying the same prices twice changes nothing.
-- The rollups key rows by UTC minute/hour and route/agent/model/provider/operation with
-- '' for NULL, exactly as the writer does; cost_usd adds known costs, n_cost counts them.
-- Parameters: one array per column: trace_id, span_id, started_at, cost_usd,
-- cost_basis, computed_cost_usd.
WITH new AS (
    SELECT *
    FROM unnest(%(trace_id)s::text[], %(span_id)s::text[], %(started_at)s::timestamptz[],
                %(cost_usd)s::numeric[], %(cost_basis)s::text[], %(computed_cost_usd)s::numeric[])
        AS n(trace_id, span_id, started_at, cost_usd, cost_basis, computed_cost_usd)
), changed AS (
    SELECT o.trace_id, o.span_id, o.started_at,
           coalesce(o.route, '') AS route, coalesce(o.agent, '') AS agent,
           coalesce(o.request_model, '') AS request_model, coalesce(o.provider, '') AS provider,
           coalesce(o.operation, '') AS operation,
           coalesce(n.cost_usd, 0) - coalesce(o.cost_usd, 0) AS d_cost,
           (n.cost_usd IS NOT NULL)::int - (o.cost_usd IS NOT NULL)::int AS d_n_cost
    FROM route_observations AS o
    JOIN new AS n USING (trace_id, span_id, started_at)
    WHERE (o.cost_usd, o.cost_basis, o.computed_cost_usd)
          IS DISTINCT FROM (n.cost_usd, n.cost_basis, n.computed_cost_usd)
), upd AS (
    UPDATE route_observations AS o
    SET cost_usd = n.cost_usd, cost_basis = n.cost_basis, computed_cost_usd = n.computed_cost_usd
    FROM new AS n
    WHERE o.trace_id = n.trace_id AND o.span_id = n.span_id AND o.started_at = n.started_at
      AND (o.cost_usd, o.cost_basis, o.computed_cost_usd)
          IS DISTINCT FROM (n.cost_usd, n.cost_basis, n.computed_cost_usd)
    RETURNING 1
), minute AS (
    UPDATE route_rollup_minute AS r
    SET cost_usd = r.cost_usd + d.d_cost, n_cost = r.n_cost + d.d_n_cost
    FROM (SELECT date_trunc('minute', started_at, 'UTC') AS ts, route, agent, request_model, provider,
                 operation, sum(d_cost) AS d_cost, sum(d_n_cost) AS d_n_cost
          FROM changed GROUP BY 1, 2, 3, 4, 5, 6) AS d
    WHERE r.ts = d.ts AND r.route = d.route AND r.agent = d.agent AND r.request_model = d.request_model
      AND r.provider = d.provider AND r.operation = d.operation
    RETURNING 1
), hour AS (
    UPDATE route_rollup_hour AS r
    SET cost_usd = r.cost_usd + d.d_cost, n_cost = r.n_cost + d.d_n_cost
    FROM (SELECT date_trunc('hour', started_at, 'UTC') AS ts, route, agent, request_model, provider,
                 operation, sum(d_cost) AS d_cost, sum(d_n_cost) AS d_n_cost
          FROM changed GROUP BY 1, 2, 3, 4, 5, 6) AS d
    WHERE r.ts = d.ts AND r.route = d.route AND r.agent = d.agent AND r.request_model = d.request_model
      AND r.provider = d.provider AND r.operation = d.operation
    RETURNING 1
), route_hour AS (
    UPDATE route_stats_hour AS r
    SET cost_usd = r.cost_usd + d.d_cost, n_cost = r.n_cost + d.d_n_cost
    FROM (SELECT date_trunc('hour', started_at, 'UTC') AS ts, route,
                 sum(d_cost) AS d_cost, sum(d_n_cost) AS d_n_cost
          FROM changed GROUP BY 1, 2) AS d
    WHERE r.ts = d.ts AND r.route = d.route
    RETURNING 1
)
SELECT (SELECT count(*) FROM upd) AS rows_changed,
       (SELECT coalesce(sum(d_cost), 0) FROM changed) AS cost_delta,
       (SELECT count(*) FROM minute) + (SELECT count(*) FROM hour) + (SELECT count(*) FROM route_hour)
           AS rollup_rows
