-- Store a batch of feedback, one array per column (same length), in one statement.
-- Idempotent: feedback already stored (same feedback_id) is left as it is; the row
-- count says how many were new.
INSERT INTO feedback (feedback_id, trace_id, span_id, recorded_at, outcome, quality,
                      satisfaction, agent, model, comment)
SELECT *
FROM unnest(%(feedback_id)s::text[], %(trace_id)s::text[], %(span_id)s::text[],
            %(recorded_at)s::timestamptz[], %(outcome)s::text[], %(quality)s::float8[],
            %(satisfaction)s::float8[], %(agent)s::text[], %(model)s::text[], %(comment)s::text[])
ON CONFLICT (feedback_id) DO NOTHING
