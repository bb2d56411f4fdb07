-- Rows a reprice may change in [start, end): every cost the pricer computes or could
-- compute (basis unknown or computed) and the computed cost kept beside a reported one.
-- Self-hosted calls (basis local) are never repriced.
-- Parameters: start, end.
SELECT trace_id, span_id, started_at, provider, response_model, request_model,
       input_tokens, cached_input_tokens, cache_creation_input_tokens, output_tokens,
       reasoning_tokens, cost_usd, cost_basis, computed_cost_usd
FROM route_observations
WHERE started_at >= %(start)s AND started_at < %(end)s
  AND (cost_basis IS NULL OR cost_basis IN ('unknown', 'computed', 'reported'))
