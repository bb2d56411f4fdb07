-- Per-route hourly rollup: what long-window route stats read.
--
-- route_rollup_hour keeps every (route, agent, model, provider, operation) combination;
-- merging their histograms for a day of traffic touches every combination of every hour.
-- Route stats only need the route, so the writer also maintains this narrower table in
-- the same statement (only rows actually inserted are added): a 24 h answer merges 25
-- rows per route, however many agents and models share it. Same columns and histogram
-- encoding as the other rollups (see migration 0002).

CREATE TABLE route_stats_hour (
    ts                  timestamptz      NOT NULL,
    route               text             NOT NULL,
    n                   bigint           NOT NULL,
    n_ok                bigint           NOT NULL,
    n_fallback          bigint           NOT NULL,
    input_tokens        bigint           NOT NULL,
    output_tokens       bigint           NOT NULL,
    cached_input_tokens bigint           NOT NULL,
    reasoning_tokens    bigint           NOT NULL,
    cost_usd            numeric          NOT NULL,
    n_cost              bigint           NOT NULL,
    duration_ms_ok_sum  double precision NOT NULL,
    lat_idx             smallint[]       NOT NULL,
    lat_cnt             integer[]        NOT NULL,
    ttft_idx            smallint[]       NOT NULL,
    ttft_cnt            integer[]        NOT NULL,
    PRIMARY KEY (ts, route)
);
