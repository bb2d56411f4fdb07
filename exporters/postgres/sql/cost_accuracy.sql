-- Reported against computed cost per provider: calls whose cost was reported (by the
-- provider or the application) and could also be priced. Drift on the sums, and the
-- mean and largest relative difference per call (over calls with a computed cost > 0).
-- Parameters: start, end (the half-open interval [start, end)).
SELECT provider,
       count(*) AS calls,
       sum(cost_usd) AS reported_usd,
       sum(computed_cost_usd) AS computed_usd,
       avg(abs(cost_usd - computed_cost_usd) / computed_cost_usd)
           FILTER (WHERE computed_cost_usd > 0) AS mean_abs_relative,
       max(abs(cost_usd - computed_cost_usd) / computed_cost_usd)
           FILTER (WHERE computed_cost_usd > 0) AS max_abs_relative
FROM route_observations
WHERE started_at >= %(start)s AND started_at < %(end)s
  AND cost_basis = 'reported' AND cost_usd IS NOT NULL AND computed_cost_usd IS NOT NULL
GROUP BY provider
ORDER BY calls DESC, provider NULLS LAST
