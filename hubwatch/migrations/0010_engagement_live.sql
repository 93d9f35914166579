-- Rolling engagement, live: the processor recomputes a model's windows on each of its
-- snapshots (processors/engagement.py); the newest row per model wins. The same numbers
-- as the engagement canned query over engagement_hourly, at the time of the snapshot.
CREATE TABLE IF NOT EXISTS engagement_live
(
    repo_id             String COMMENT 'Hub repo id',
    at                  DateTime64(3, 'UTC') COMMENT 'time of the snapshot the windows end at',
    likes               UInt64 COMMENT 'likes at at',
    downloads_all_time  UInt64 COMMENT 'all-time downloads (the 30-day count when the Hub gives no all-time one)',
    likes_1h            Int64 COMMENT 'likes gained in the hour before at',
    likes_24h           Int64 COMMENT 'likes gained in the 24 hours before at',
    likes_7d            Int64 COMMENT 'likes gained in the 7 days before at',
    downloads_1h        Int64 COMMENT 'downloads gained in the hour before at',
    downloads_24h       Int64 COMMENT 'downloads gained in the 24 hours before at',
    downloads_7d        Int64 COMMENT 'downloads gained in the 7 days before at',
    velocity_per_hour   Float64 COMMENT 'downloads_24h / 24',
    acceleration        Float64 COMMENT 'velocity minus the velocity of the 24 hours before'
)
ENGINE = ReplacingMergeTree(at)
ORDER BY repo_id;
