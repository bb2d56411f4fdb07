-- Move the staged rows into route_observations, skipping rows already stored, and add
-- exactly the rows this statement inserted to the rollups (per minute and per hour by
-- route/agent/model/provider/operation; per hour by route).
-- One statement: raw rows and their rollups always commit (or fail) together.
-- Rows are inserted in key order, and rollup rows upserted in key order, so that two
-- writers with overlapping batches lock in the same order and never deadlock.
WITH moved AS (
    DELETE FROM pg_temp.otel_llm_staging RETURNING *
), ins AS (
    INSERT INTO route_observations
    SELECT * FROM moved ORDER BY trace_id, span_id, started_at
    ON CONFLICT (trace_id, span_id, started_at) DO NOTHING
    RETURNING started_at, route, agent, request_model, provider, operation, ok,
              coalesce(fallback, false) AS fallback, duration_ms, ttft_ms, input_tokens, output_tokens, cached_input_tokens,
              reasoning_tokens, cost_usd
), keyed AS (
    SELECT date_trunc('minute', i.started_at) AS ts,
           coalesce(i.route, '') AS route,
           coalesce(i.agent, '') AS agent,
           coalesce(i.request_model, '') AS request_model,
           coalesce(i.provider, '') AS provider,
           coalesce(i.operation, '') AS operation,
           i.ok, i.fallback, i.duration_ms, i.cost_usd,
           i.input_tokens, i.output_tokens, i.cached_input_tokens, i.reasoning_tokens,
           CASE WHEN i.ok THEN hist_bucket(i.duration_ms) END AS lat_b,
           CASE WHEN i.ok THEN hist_bucket(i.ttft_ms) END AS ttft_b
    FROM ins AS i
), m_sums AS (
    SELECT ts, route, agent, request_model, provider, operation,
           count(*) AS n,
           count(*) FILTER (WHERE ok) AS n_ok,
           count(*) FILTER (WHERE fallback) AS n_fallback,
           coalesce(sum(input_tokens), 0) AS input_tokens,
           coalesce(sum(output_tokens), 0) AS output_tokens,
           coalesce(sum(cached_input_tokens), 0) AS cached_input_tokens,
           coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
           coalesce(sum(cost_usd), 0) AS cost_usd,
           count(cost_usd) AS n_cost,
           coalesce(sum(duration_ms) FILTER (WHERE ok), 0) AS duration_ms_ok_sum
    FROM keyed
    GROUP BY ts, route, agent, request_model, provider, operation
), m_bins AS (
    SELECT 'lat' AS kind, ts, route, agent, request_model, provider, operation, lat_b AS b, count(*) AS c
    FROM keyed WHERE lat_b IS NOT NULL
    GROUP BY ts, route, agent, request_model, provider, operation, lat_b
    UNION ALL
    SELECT 'ttft', ts, route, agent, request_model, provider, operation, ttft_b, count(*)
    FROM keyed WHERE ttft_b IS NOT NULL
    GROUP BY ts, route, agent, request_model, provider, operation, ttft_b
), sums AS (
    SELECT 'minute' AS level, * FROM m_sums
    UNION ALL
    SELECT 'hour', date_trunc('hour', ts), route, agent, request_model, provider, operation,
           sum(n), sum(n_ok), sum(n_fallback), sum(input_tokens), sum(output_tokens),
           sum(cached_input_tokens), sum(reasoning_tokens), sum(cost_usd), sum(n_cost),
           sum(duration_ms_ok_sum)
    FROM m_sums
    GROUP BY date_trunc('hour', ts), route, agent, request_model, provider, operation
), bins AS (
    SELECT 'minute' AS level, * FROM m_bins
    UNION ALL
    SELECT 'hour', kind, date_trunc('hour', ts), route, agent, request_model, provider, operation, b, sum(c)
    FROM m_bins
    GROUP BY kind, date_trunc('hour', ts), route, agent, request_model, provider, operation, b
), hists AS (
    SELECT level, ts, route, agent, request_model, provider, operation,
           array_agg(b) FILTER (WHERE kind = 'lat') AS lat_idx,
           array_agg(c::integer) FILTER (WHERE kind = 'lat') AS lat_cnt,
           array_agg(b) FILTER (WHERE kind = 'ttft') AS ttft_idx,
           array_agg(c::integer) FILTER (WHERE kind = 'ttft') AS ttft_cnt
    FROM bins
    GROUP BY level, ts, route, agent, request_model, provider, operation
), agg AS (
    SELECT s.level, s.ts, s.route, s.agent, s.request_model, s.provider, s.operation,
           s.n::bigint AS n, s.n_ok::bigint AS n_ok, s.n_fallback::bigint AS n_fallback,
           s.input_tokens::bigint AS input_tokens, s.output_tokens::bigint AS output_tokens,
           s.cached_input_tokens::bigint AS cached_input_tokens,
           s.reasoning_tokens::bigint AS reasoning_tokens,
           s.cost_usd, s.n_cost::bigint AS n_cost, s.duration_ms_ok_sum,
           coalesce(h.lat_idx, '{}') AS lat_idx, coalesce(h.lat_cnt, '{}') AS lat_cnt,
           coalesce(h.ttft_idx, '{}') AS ttft_idx, coalesce(h.ttft_cnt, '{}') AS ttft_cnt
    FROM sums AS s
    LEFT JOIN hists AS h USING (level, ts, route, agent, request_model, provider, operation)
), route_sums AS (
    SELECT ts, route, sum(n)::bigint AS n, sum(n_ok)::bigint AS n_ok, sum(n_fallback)::bigint AS n_fallback,
           sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
           sum(cached_input_tokens)::bigint AS cached_input_tokens,
           sum(reasoning_tokens)::bigint AS reasoning_tokens,
           sum(cost_usd) AS cost_usd, sum(n_cost)::bigint AS n_cost,
           sum(duration_ms_ok_sum) AS duration_ms_ok_sum
    FROM agg WHERE level = 'hour'
    GROUP BY ts, route
), route_hists AS (
    SELECT ts, route,
           array_agg(b) FILTER (WHERE kind = 'lat') AS lat_idx,
           array_agg(c::integer) FILTER (WHERE kind = 'lat') AS lat_cnt,
           array_agg(b) FILTER (WHERE kind = 'ttft') AS ttft_idx,
           array_agg(c::integer) FILTER (WHERE kind = 'ttft') AS ttft_cnt
    FROM (SELECT kind, ts, route, b, sum(c) AS c FROM bins WHERE level = 'hour'
          GROUP BY kind, ts, route, b) AS rb
    GROUP BY ts, route
), up_route AS (
    INSERT INTO route_stats_hour AS r
    SELECT s.ts, s.route, s.n, s.n_ok, s.n_fallback, s.input_tokens, s.output_tokens,
           s.cached_input_tokens, s.reasoning_tokens, s.cost_usd, s.n_cost, s.duration_ms_ok_sum,
           coalesce(h.lat_idx, '{}'), coalesce(h.lat_cnt, '{}'),
           coalesce(h.ttft_idx, '{}'), coalesce(h.ttft_cnt, '{}')
    FROM route_sums AS s LEFT JOIN route_hists AS h USING (ts, route)
    ORDER BY s.ts, s.route
    ON CONFLICT (ts, route) DO UPDATE SET
        n = r.n + excluded.n,
        n_ok = r.n_ok + excluded.n_ok,
        n_fallback = r.n_fallback + excluded.n_fallback,
        input_tokens = r.input_tokens + excluded.input_tokens,
        output_tokens = r.output_tokens + excluded.output_tokens,
        cached_input_tokens = r.cached_input_tokens + excluded.cached_input_tokens,
        reasoning_tokens = r.reasoning_tokens + excluded.reasoning_tokens,
        cost_usd = r.cost_usd + excluded.cost_usd,
        n_cost = r.n_cost + excluded.n_cost,
        duration_ms_ok_sum = r.duration_ms_ok_sum + excluded.duration_ms_ok_sum,
        (lat_idx, lat_cnt) = (SELECT m.idx, m.cnt FROM hist_add(r.lat_idx, r.lat_cnt, excluded.lat_idx, excluded.lat_cnt) AS m),
        (ttft_idx, ttft_cnt) = (SELECT m.idx, m.cnt FROM hist_add(r.ttft_idx, r.ttft_cnt, excluded.ttft_idx, excluded.ttft_cnt) AS m)
    RETURNING 1
), up_minute AS (
    INSERT INTO route_rollup_minute AS r
    SELECT ts, route, agent, request_model, provider, operation, n, n_ok, n_fallback,
           input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, n_cost,
           duration_ms_ok_sum, lat_idx, lat_cnt, ttft_idx, ttft_cnt
    FROM agg WHERE level = 'minute'
    ORDER BY ts, route, agent, request_model, provider, operation
    ON CONFLICT (ts, route, agent, request_model, provider, operation) DO UPDATE SET
        n = r.n + excluded.n,
        n_ok = r.n_ok + excluded.n_ok,
        n_fallback = r.n_fallback + excluded.n_fallback,
        input_tokens = r.input_tokens + excluded.input_tokens,
        output_tokens = r.output_tokens + excluded.output_tokens,
        cached_input_tokens = r.cached_input_tokens + excluded.cached_input_tokens,
        reasoning_tokens = r.reasoning_tokens + excluded.reasoning_tokens,
        cost_usd = r.cost_usd + excluded.cost_usd,
        n_cost = r.n_cost + excluded.n_cost,
        duration_ms_ok_sum = r.duration_ms_ok_sum + excluded.duration_ms_ok_sum,
        (lat_idx, lat_cnt) = (SELECT m.idx, m.cnt FROM hist_add(r.lat_idx, r.lat_cnt, excluded.lat_idx, excluded.lat_cnt) AS m),
        (ttft_idx, ttft_cnt) = (SELECT m.idx, m.cnt FROM hist_add(r.ttft_idx, r.ttft_cnt, excluded.ttft_idx, excluded.ttft_cnt) AS m)
    RETURNING 1
), up_hour AS (
    INSERT INTO route_rollup_hour AS r
    SELECT ts, route, agent, request_model, provider, operation, n, n_ok, n_fallback,
           input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, n_cost,
           duration_ms_ok_sum, lat_idx, lat_cnt, ttft_idx, ttft_cnt
    FROM agg WHERE level = 'hour'
    ORDER BY ts, route, agent, request_model, provider, operation
    ON CONFLICT (ts, route, agent, request_model, provider, operation) DO UPDATE SET
        n = r.n + excluded.n,
        n_ok = r.n_ok + excluded.n_ok,
        n_fallback = r.n_fallback + excluded.n_fallback,
        input_tokens = r.input_tokens + excluded.input_tokens,
        output_tokens = r.output_tokens + excluded.output_tokens,
        cached_input_tokens = r.cached_input_tokens + excluded.cached_input_tokens,
        reasoning_tokens = r.reasoning_tokens + excluded.reasoning_tokens,
        cost_usd = r.cost_usd + excluded.cost_usd,
        n_cost = r.n_cost + excluded.n_cost,
        duration_ms_ok_sum = r.duration_ms_ok_sum + excluded.duration_ms_ok_sum,
        (lat_idx, lat_cnt) = (SELECT m.idx, m.cnt FROM hist_add(r.lat_idx, r.lat_cnt, excluded.lat_idx, excluded.lat_cnt) AS m),
        (ttft_idx, ttft_cnt) = (SELECT m.idx, m.cnt FROM hist_add(r.ttft_idx, r.ttft_cnt, excluded.ttft_idx, excluded.ttft_cnt) AS m)
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS inserted,
       (SELECT count(*) FROM moved) AS staged,
       (SELECT count(*) FROM up_minute) + (SELECT count(*) FROM up_hour)
           + (SELECT count(*) FROM up_route) AS rollup_rows
