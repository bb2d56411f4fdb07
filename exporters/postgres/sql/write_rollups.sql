-- Add a batch's rollup deltas, aggregated by the writer (exporters/postgres/rollup.py),
-- to the per-minute and per-hour rollups (by route/agent/model/provider/operation) and to
-- the per-route hourly rollup. Used only when every row of the batch was just inserted
-- by a plain COPY in the same transaction, so the deltas count exactly the rows stored.
-- Same upserts as write_chunk.sql. Rows are upserted in key order so that concurrent
-- writers never deadlock.
-- Parameters: one JSON array per level (minute, hour, route_hour) of rollup rows, each
-- row an array in the column order of its INSERT: the key (ts as minutes since the
-- epoch), the sums (cost_usd as a decimal string, exact), and the histograms as array
-- literals ("{12,40}"). One text parameter a level costs the writer far less to send
-- than one array parameter a column.
WITH up_minute AS (
    INSERT INTO route_rollup_minute AS r (ts, route, agent, request_model, provider, operation, n, n_ok, n_fallback, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, n_cost, duration_ms_ok_sum, lat_idx, lat_cnt, ttft_idx, ttft_cnt)
    SELECT to_timestamp((e->>0)::bigint * 60) AS ts,
           e->>1 AS route,
           e->>2 AS agent,
           e->>3 AS request_model,
           e->>4 AS provider,
           e->>5 AS operation,
           (e->>6)::bigint AS n,
           (e->>7)::bigint AS n_ok,
           (e->>8)::bigint AS n_fallback,
           (e->>9)::bigint AS input_tokens,
           (e->>10)::bigint AS output_tokens,
           (e->>11)::bigint AS cached_input_tokens,
           (e->>12)::bigint AS reasoning_tokens,
           (e->>13)::numeric AS cost_usd,
           (e->>14)::bigint AS n_cost,
           (e->>15)::float8 AS duration_ms_ok_sum,
           (e->>16)::smallint[] AS lat_idx,
           (e->>17)::integer[] AS lat_cnt,
           (e->>18)::smallint[] AS ttft_idx,
           (e->>19)::integer[] AS ttft_cnt
    FROM jsonb_array_elements(%(minute)s::jsonb) AS e
    ORDER BY 1, 2, 3, 4, 5, 6
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
    SELECT to_timestamp((e->>0)::bigint * 60) AS ts,
           e->>1 AS route,
           e->>2 AS agent,
           e->>3 AS request_model,
           e->>4 AS provider,
           e->>5 AS operation,
           (e->>6)::bigint AS n,
           (e->>7)::bigint AS n_ok,
           (e->>8)::bigint AS n_fallback,
           (e->>9)::bigint AS input_tokens,
           (e->>10)::bigint AS output_tokens,
           (e->>11)::bigint AS cached_input_tokens,
           (e->>12)::bigint AS reasoning_tokens,
           (e->>13)::numeric AS cost_usd,
           (e->>14)::bigint AS n_cost,
           (e->>15)::float8 AS duration_ms_ok_sum,
           (e->>16)::smallint[] AS lat_idx,
           (e->>17)::integer[] AS lat_cnt,
           (e->>18)::smallint[] AS ttft_idx,
           (e->>19)::integer[] AS ttft_cnt
    FROM jsonb_array_elements(%(hour)s::jsonb) AS e
    ORDER BY 1, 2, 3, 4, 5, 6
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
    SELECT to_timestamp((e->>0)::bigint * 60) AS ts,
           e->>1 AS route,
           (e->>2)::bigint AS n,
           (e->>3)::bigint AS n_ok,
           (e->>4)::bigint AS n_fallback,
           (e->>5)::bigint AS input_tokens,
           (e->>6)::bigint AS output_tokens,
           (e->>7)::bigint AS cached_input_tokens,
           (e->>8)::bigint AS reasoning_tokens,
           (e->>9)::numeric AS cost_usd,
           (e->>10)::bigint AS n_cost,
           (e->>11)::float8 AS duration_ms_ok_sum,
           (e->>12)::smallint[] AS lat_idx,
           (e->>13)::integer[] AS lat_cnt,
           (e->>14)::smallint[] AS ttft_idx,
           (e->>15)::integer[] AS ttft_cnt
    FROM jsonb_array_elements(%(route_hour)s::jsonb) AS e
    ORDER BY 1, 2
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
