-- A day's first and last counters per model, rolled up from engagement_hourly: the
-- engagement query for a past time reads its 15 days as whole days from here and hours
-- only at the windows' edges (a day's states merge exactly as its hours' do, and
-- argMin/argMax/min/max make a late or redelivered hour harmless). Kept by a view on
-- engagement_hourly (itself fed by the view on model_snapshots), so it sees every hour the
-- hourly table does; kept for ever, like the hours.
CREATE TABLE IF NOT EXISTS engagement_daily
(
    day             DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)) COMMENT 'start of the day (UTC)',
    repo_id         String COMMENT 'Hub repo id',
    likes_first     AggregateFunction(argMin, UInt64, DateTime64(3, 'UTC')) COMMENT 'likes at the day''s first snapshot (argMinMerge to read)',
    likes_last      AggregateFunction(argMax, UInt64, DateTime64(3, 'UTC')) COMMENT 'likes at the day''s last snapshot (argMaxMerge to read)',
    downloads_first AggregateFunction(argMin, UInt64, DateTime64(3, 'UTC')) COMMENT 'all-time downloads at the day''s first snapshot',
    downloads_last  AggregateFunction(argMax, UInt64, DateTime64(3, 'UTC')) COMMENT 'all-time downloads at the day''s last snapshot',
    first_at        SimpleAggregateFunction(min, DateTime64(3, 'UTC')) CODEC(Delta, ZSTD(1)) COMMENT 'time of the day''s first snapshot',
    last_at         SimpleAggregateFunction(max, DateTime64(3, 'UTC')) CODEC(Delta, ZSTD(1)) COMMENT 'time of the day''s last snapshot'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, repo_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement_daily_mv TO engagement_daily AS
SELECT
    toStartOfDay(hour) AS day,
    repo_id,
    argMinMergeState(likes_first) AS likes_first,
    argMaxMergeState(likes_last) AS likes_last,
    argMinMergeState(downloads_first) AS downloads_first,
    argMaxMergeState(downloads_last) AS downloads_last,
    min(first_at) AS first_at,
    max(last_at) AS last_at
FROM engagement_hourly
GROUP BY day, repo_id;

-- Hours written before this migration (after the view exists: an hour written meanwhile is
-- in both, which the aggregates absorb).
INSERT INTO engagement_daily
SELECT
    toStartOfDay(hour) AS day,
    repo_id,
    argMinMergeState(likes_first) AS likes_first,
    argMaxMergeState(likes_last) AS likes_last,
    argMinMergeState(downloads_first) AS downloads_first,
    argMaxMergeState(downloads_last) AS downloads_last,
    min(first_at) AS first_at,
    max(last_at) AS last_at
FROM engagement_hourly
GROUP BY day, repo_id;
