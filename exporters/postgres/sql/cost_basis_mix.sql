-- How much of the cost is reported, computed, local or unknown, with counts, from raw
-- rows (the rollups do not keep the basis). A row without a basis counts as unknown.
-- Parameters: start, end (the half-open interval [start, end)).
SELECT coalesce(cost_basis, 'unknown') AS basis,
       count(*) AS calls,
       count(cost_usd) AS priced_calls,
       coalesce(sum(cost_usd), 0) AS cost_usd,
       count(computed_cost_usd) AS computed_calls,
       coalesce(sum(computed_cost_usd), 0) AS computed_cost_usd
FROM route_observations
WHERE started_at >= %(start)s AND started_at < %(end)s
GROUP BY 1
ORDER BY sum(cost_usd) DESC NULLS LAST, 1
