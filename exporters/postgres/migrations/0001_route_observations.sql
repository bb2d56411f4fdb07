-- Raw route observations: one row per provider-call attempt.
--
-- Partitioned by day on started_at (UTC days); partitions are created ahead and on
-- demand by the writer, and retention drops whole partitions. The unique key carries
-- the partition column, as PostgreSQL requires, and the identity (trace_id, span_id):
-- a span has one start time, so a resent span always meets its first copy.
--
-- Citus: distribute by trace_id (part of the key); no foreign keys, no triggers.

CREATE TABLE route_observations (
    trace_id                    text             NOT NULL,
    span_id                     text             NOT NULL,
    started_at                  timestamptz      NOT NULL,
    duration_ms                 double precision NOT NULL,
    parent_span_id              text,
    logical_call_id             text,
    ttft_ms                     double precision,
    service_name                text,
    instance_id                 text,
    agent                       text,
    session_id                  text,
    user_id                     text,
    tags                        jsonb            NOT NULL DEFAULT '{}',
    operation                   text,
    provider                    text,
    server_address              text,
    request_model               text,
    response_model              text,
    route                       text,
    attempt                     integer,
    fallback                    boolean,
    stream                      boolean,
    ok                          boolean          NOT NULL,
    error_type                  text,
    http_status                 integer,
    finish_reason               text,
    input_tokens                bigint,
    cached_input_tokens         bigint,
    cache_creation_input_tokens bigint,
    output_tokens               bigint,
    reasoning_tokens            bigint,
    tools_offered               integer,
    tool_calls                  integer,
    cost_usd                    numeric,
    cost_basis                  text,
    computed_cost_usd           numeric,
    routing_complexity          text,
    routing_score               double precision,
    attributes                  jsonb            NOT NULL DEFAULT '{}',
    PRIMARY KEY (trace_id, span_id, started_at),
    -- Values that would poison sums and percentiles (NaN, infinities, negative times)
    -- are refused; the writer isolates such a row and reports it as skipped.
    CONSTRAINT route_observations_duration_valid
        CHECK (duration_ms >= 0 AND duration_ms < 'Infinity'::double precision),
    CONSTRAINT route_observations_ttft_valid
        CHECK (ttft_ms >= 0 AND ttft_ms < 'Infinity'::double precision),
    CONSTRAINT route_observations_cost_valid
        CHECK (cost_usd > -1e15 AND cost_usd < 1e15),
    CONSTRAINT route_observations_computed_cost_valid
        CHECK (computed_cost_usd > -1e15 AND computed_cost_usd < 1e15)
) PARTITION BY RANGE (started_at);

-- Time-range scans (short windows read raw rows). BRIN: rows arrive nearly in time
-- order, and it costs the write path almost nothing.
CREATE INDEX route_observations_started_at_brin
    ON route_observations USING brin (started_at) WITH (pages_per_range = 32);
