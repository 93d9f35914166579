-- When each hour's first and last snapshot was taken, so a velocity divides a gain by the
-- span its observations actually cover (a model first seen 2 hours ago gained over 2 hours,
-- not 24). Hours written before this migration read the start of their hour for both.
ALTER TABLE engagement_hourly
    ADD COLUMN IF NOT EXISTS first_at SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
        DEFAULT hour COMMENT 'time of the hour''s first snapshot',
    ADD COLUMN IF NOT EXISTS last_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
        DEFAULT hour COMMENT 'time of the hour''s last snapshot';
ALTER TABLE engagement_hourly_mv MODIFY QUERY
SELECT
    repo_id,
    toStartOfHour(observed_at) AS hour,
    argMinState(ifNull(likes, 0), observed_at) AS likes_first,
    argMaxState(ifNull(likes, 0), observed_at) AS likes_last,
    argMinState(ifNull(downloads_all_time, ifNull(downloads, 0)), observed_at) AS downloads_first,
    argMaxState(ifNull(downloads_all_time, ifNull(downloads, 0)), observed_at) AS downloads_last,
    min(observed_at) AS first_at,
    max(observed_at) AS last_at
FROM model_snapshots
GROUP BY repo_id, hour;
ALTER TABLE engagement_live
    COMMENT COLUMN velocity_per_hour 'downloads_24h per hour of the span its snapshots cover (at least 1 hour)',
    COMMENT COLUMN acceleration 'velocity minus the velocity of the 24 hours before (each over its own span)';
