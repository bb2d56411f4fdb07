-- Add a batch's rollup deltas, aggregated by the writer (exporters/postgres/rollup.py),
-- to the per-minute and per-hour rollups (by route/agent/model/provider/operation) and to
-- the per-route hourly rollup. Used only when every row of the batch was just inserted
-- by a plain COPY in the same transaction, so the deltas count exactly the rows stored.
-- Same upserts as write_chunk.sql; histograms arrive as array literals, one per rollup
-- row; rows are upserted in key order so that concurrent writers never deadlock.
-- Parameters: one array per column and level (m_ minute, h_ hour, r_ route and hour).
WITH up_minute AS (
    INSERT INTO route_rollup_minute AS r (ts, route, agent, request_model, provider, operation, n, n_ok, n_fallback, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, n_cost, duration_ms_ok_sum, lat_idx, lat_cnt, ttft_idx, ttft_cnt)
    SELECT u.ts, u.route, u.agent, u.request_model, u.provider, u.operation, u.n, u.n_ok, u.n_fallback, u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens, u.cost_usd, u.n_cost, u.duration_ms_ok_sum, u.lat_idx::smallint[], u.lat_cnt::integer[], u.ttft_idx::smallint[], u.ttft_cnt::integer[]
    FROM unnest(%(m_ts)s::timestamptz[],
                %(m_route)s::text[],
                %(m_agent)s::text[],
                %(m_request_model)s::text[],
                %(m_provider)s::text[],
                %(m_operation)s::text[],
                %(m_n)s::bigint[],
                %(m_n_ok)s::bigint[],
                %(m_n_fallback)s::bigint[],
                %(m_input_tokens)s::bigint[],
                %(m_output_tokens)s::bigint[],
                %(m_cached_input_tokens)s::bigint[],
                %(m_reasoning_tokens)s::bigint[],
                %(m_cost_usd)s::numeric[],
                %(m_n_cost)s::bigint[],
                %(m_duration_ms_ok_sum)s::float8[],
                %(m_lat_idx)s::text[],
                %(m_lat_cnt)s::text[],
                %(m_ttft_idx)s::text[],
                %(m_ttft_cnt)s::text[])
        AS u(ts, route, agent, request_model, provider, operation, n, n_ok, n_fallback, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, n_cost, duration_ms_ok_sum, lat_idx, lat_cnt, ttft_idx, ttft_cnt)
    ORDER BY u.ts, u.route, u.agent, u.request_model, u.provider, u.operation
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
    INSERT INTO route_rollup_hour AS r (ts, route, agent, request_model, provider, operation, n, n_ok, n_fallback, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, n_cost, duration_ms_ok_sum, lat_idx, lat_cnt, ttft_idx, ttft_cnt)
    SELECT u.ts, u.route, u.agent, u.request_model, u.provider, u.operation, u.n, u.n_ok, u.n_fallback, u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens, u.cost_usd, u.n_cost, u.duration_ms_ok_sum, u.lat_idx::smallint[], u.lat_cnt::integer[], u.ttft_idx::smallint[], u.ttft_cnt::integer[]
    FROM unnest(%(h_ts)s::timestamptz[],
                %(h_route)s::text[],
                %(h_agent)s::text[],
                %(h_request_model)s::text[],
                %(h_provider)s::text[],
                %(h_operation)s::text[],
                %(h_n)s::bigint[],
                %(h_n_ok)s::bigint[],
                %(h_n_fallback)s::bigint[],
                %(h_input_tokens)s::bigint[],
                %(h_output_tokens)s::bigint[],
                %(h_cached_input_tokens)s::bigint[],
                %(h_reasoning_tokens)s::bigint[],
                %(h_cost_usd)s::numeric[],
                %(h_n_cost)s::bigint[],
                %(h_duration_ms_ok_sum)s::float8[],
                %(h_lat_idx)s::text[],
                %(h_lat_cnt)s::text[],
                %(h_ttft_idx)s::text[],
                %(h_ttft_cnt)s::text[])
        AS u(ts, route, agent, request_model, provider, operation, n, n_ok, n_fallback, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, n_cost, duration_ms_ok_sum, lat_idx, lat_cnt, ttft_idx, ttft_cnt)
    ORDER BY u.ts, u.route, u.agent, u.request_model, u.provider, u.operation
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
), up_route AS (
    INSERT INTO route_stats_hour AS r (ts, route, n, n_ok, n_fallback, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, n_cost, duration_ms_ok_sum, lat_idx, lat_cnt, ttft_idx, ttft_cnt)
    SELECT u.ts, u.route, u.n, u.n_ok, u.n_fallback, u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens, u.cost_usd, u.n_cost, u.duration_ms_ok_sum, u.lat_idx::smallint[], u.lat_cnt::integer[], u.ttft_idx::smallint[], u.ttft_cnt::integer[]
    FROM unnest(%(r_ts)s::timestamptz[],
                %(r_route)s::text[],
                %(r_n)s::bigint[],
                %(r_n_ok)s::bigint[],
                %(r_n_fallback)s::bigint[],
                %(r_input_tokens)s::bigint[],
                %(r_output_tokens)s::bigint[],
                %(r_cached_input_tokens)s::bigint[],
                %(r_reasoning_tokens)s::bigint[],
                %(r_cost_usd)s::numeric[],
                %(r_n_cost)s::bigint[],
                %(r_duration_ms_ok_sum)s::float8[],
                %(r_lat_idx)s::text[],
                %(r_lat_cnt)s::text[],
                %(r_ttft_idx)s::text[],
                %(r_ttft_cnt)s::text[])
        AS u(ts, route, n, n_ok, n_fallback, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, n_cost, duration_ms_ok_sum, lat_idx, lat_cnt, ttft_idx, ttft_cnt)
    ORDER BY u.ts, u.route
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
)
SELECT (SELECT count(*) FROM up_minute) + (SELECT count(*) FROM up_hour)
           + (SELECT count(*) FROM up_route) AS rollup_rows
