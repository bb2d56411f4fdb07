-- Models whose calls have no known cost (basis unknown) in [start, end), most calls
-- first: what a price file entry would fix. calls_with_tokens counts the calls a price
-- could cost at all (the others reported no token counts).
-- Parameters: start, end.
SELECT provider, request_model, response_model,
       count(*) AS calls,
       count(*) FILTER (WHERE input_tokens IS NOT NULL OR output_tokens IS NOT NULL) AS calls_with_tokens,
       min(started_at) AS first_seen,
       max(started_at) AS last_seen
FROM route_observations
WHERE started_at >= %(start)s AND started_at < %(end)s
  AND cost_basis = 'unknown'
GROUP BY provider, request_model, response_model
ORDER BY calls DESC, provider NULLS LAST, request_model NULLS LAST, response_model NULLS LAST
