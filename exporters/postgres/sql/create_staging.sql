-- Per-connection staging table: batches are COPYed here, then moved by write_chunk.sql.
-- Temporary (no WAL, invisible to other sessions) and emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS otel_llm_staging
    (LIKE route_observations INCLUDING DEFAULTS)
    ON COMMIT DELETE ROWS
