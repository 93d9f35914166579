-- Engagement snapshots (model.snapshot): hubwatch's own time series of Hub counters.
CREATE TABLE IF NOT EXISTS model_snapshots
(
    repo_id             String,
    observed_at         DateTime64(3, 'UTC'),
    downloads           Nullable(UInt64) COMMENT 'last 30 days, as the Hub reports it',
    downloads_all_time  Nullable(UInt64),
    likes               Nullable(UInt64),
    trending_score      Nullable(Float64),
    event_id            String
)
ENGINE = ReplacingMergeTree
ORDER BY (repo_id, observed_at);

-- Per model and hour: first and last counters seen. argMin/argMax states make a redelivered
-- snapshot harmless (it aggregates to the same values).
CREATE TABLE IF NOT EXISTS engagement_hourly
(
    repo_id         String,
    hour            DateTime('UTC'),
    likes_first     AggregateFunction(argMin, UInt64, DateTime64(3, 'UTC')),
    likes_last      AggregateFunction(argMax, UInt64, DateTime64(3, 'UTC')),
    downloads_first AggregateFunction(argMin, UInt64, DateTime64(3, 'UTC')) COMMENT 'all-time downloads',
    downloads_last  AggregateFunction(argMax, UInt64, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (repo_id, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement_hourly_mv TO engagement_hourly AS
SELECT
    repo_id,
    toStartOfHour(observed_at) AS hour,
    argMinState(ifNull(likes, 0), observed_at) AS likes_first,
    argMaxState(ifNull(likes, 0), observed_at) AS likes_last,
    argMinState(ifNull(downloads_all_time, ifNull(downloads, 0)), observed_at) AS downloads_first,
    argMaxState(ifNull(downloads_all_time, ifNull(downloads, 0)), observed_at) AS downloads_last
FROM model_snapshots
GROUP BY repo_id, hour;
