-- Feedback statistics per agent over [start, end): volume, outcome mix, mean scores.
SELECT agent,
       count(*) AS n,
       count(*) FILTER (WHERE outcome = 'success') AS n_success,
       count(*) FILTER (WHERE outcome = 'fallback') AS n_fallback,
       count(*) FILTER (WHERE outcome = 'timeout') AS n_timeout,
       count(*) FILTER (WHERE outcome = 'error') AS n_error,
       count(*) FILTER (WHERE outcome = 'user_rejected') AS n_user_rejected,
       avg(quality) AS mean_quality,
       count(quality) AS quality_n,
       avg(satisfaction) AS mean_satisfaction,
       count(satisfaction) AS satisfaction_n,
       count(comment) AS n_comments,
       count(DISTINCT model) AS n_models,
       min(recorded_at) AS first_at,
       max(recorded_at) AS last_at
FROM feedback_resolved
WHERE recorded_at >= %(start)s AND recorded_at < %(end)s
GROUP BY agent
ORDER BY n DESC, agent NULLS LAST
