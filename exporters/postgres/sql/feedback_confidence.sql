-- Feedback aggregates per (agent, model) and period, for confidence: 'window' is
-- [start, end), 'recent' [recent_start, end) and 'previous' [previous_start,
-- recent_start) (a row may count in more than one). Sums and counts only; the formula
-- is applied in Python (otel_llm.reports.confidence).
SELECT f.agent,
       f.model,
       p.period,
       count(*) AS n,
       count(*) FILTER (WHERE f.outcome = 'success') AS n_success,
       sum(f.quality) AS quality_sum,
       count(f.quality) AS quality_n,
       sum(f.satisfaction) AS satisfaction_sum,
       count(f.satisfaction) AS satisfaction_n,
       max(f.recorded_at) AS last_at
FROM feedback_resolved AS f
CROSS JOIN LATERAL (VALUES
    ('window', %(start)s::timestamptz, %(end)s::timestamptz),
    ('recent', %(recent_start)s::timestamptz, %(end)s::timestamptz),
    ('previous', %(previous_start)s::timestamptz, %(recent_start)s::timestamptz)
) AS p (period, p_start, p_end)
WHERE f.recorded_at >= least(%(start)s::timestamptz, %(previous_start)s::timestamptz)
  AND f.recorded_at < %(end)s::timestamptz
  AND f.recorded_at >= p.p_start AND f.recorded_at < p.p_end
GROUP BY f.agent, f.model, p.period
