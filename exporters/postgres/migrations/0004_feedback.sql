-- Feedback on calls: an outcome and optional quality / satisfaction scores (0-10) that
-- the application records about one provider call, later read as confidence per
-- (agent, model).
--
-- Identity is feedback_id (chosen by the recorder, a random UUID by default): a batch
-- written twice, or replayed after an outage, stores each piece of feedback once.
-- trace_id / span_id name the call (the route observation's identity); agent and model
-- are NULL when the recorder did not know them, and readers then take them from the
-- route observation with the same (trace_id, span_id).
--
-- Citus: a small reference-style table; no foreign key to route_observations (the
-- observation may arrive after its feedback, or never).

CREATE TABLE feedback (
    feedback_id  text             PRIMARY KEY,
    trace_id     text,
    span_id      text,
    recorded_at  timestamptz      NOT NULL,
    outcome      text             NOT NULL,
    quality      double precision,
    satisfaction double precision,
    agent        text,
    model        text,
    comment      text,
    stored_at    timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT feedback_outcome_valid
        CHECK (outcome IN ('success', 'fallback', 'timeout', 'error', 'user_rejected')),
    CONSTRAINT feedback_quality_valid CHECK (quality >= 0 AND quality <= 10),
    CONSTRAINT feedback_satisfaction_valid CHECK (satisfaction >= 0 AND satisfaction <= 10)
);

-- Confidence and statistics read feedback by time; the join to observations by call.
CREATE INDEX feedback_recorded_at ON feedback (recorded_at);
CREATE INDEX feedback_call ON feedback (trace_id, span_id);

-- Feedback with agent and model filled in from the call's route observation where the
-- recorder gave none: what every reader of feedback selects from.
CREATE VIEW feedback_resolved AS
SELECT f.feedback_id, f.trace_id, f.span_id, f.recorded_at, f.outcome, f.quality,
       f.satisfaction, f.comment,
       coalesce(f.agent, o.agent) AS agent,
       coalesce(f.model, o.request_model) AS model
FROM feedback AS f
LEFT JOIN LATERAL (
    SELECT r.agent, r.request_model
    FROM route_observations AS r
    WHERE r.trace_id = f.trace_id AND r.span_id = f.span_id
      AND (f.agent IS NULL OR f.model IS NULL)  -- looked up only when something is missing
    LIMIT 1
) AS o ON true;
