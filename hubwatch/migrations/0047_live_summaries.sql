-- Summaries of the live engagement windows (hubwatch/summaries.py): the breakouts among
-- the ~300 k live models and the most downloaded of them, recomputed on a schedule so the
-- canned queries and panels read a few thousand rows, not engagement_live FINAL joined to
-- model_lineage on every request. Each answer is as of its view's last refresh.

-- breakouts (hubwatch/queries/breakouts.sql) in full: every derivative scoring above 1.
CREATE TABLE IF NOT EXISTS breakouts_now
(
    model                    String COMMENT 'the derivative',
    base                     String COMMENT 'its primary base',
    relation                 LowCardinality(String) COMMENT 'relation to base',
    root                     String COMMENT 'its family''s root',
    velocity_per_hour        Float64 COMMENT 'its downloads per hour over its last 24 hours',
    base_velocity_per_hour   Float64 COMMENT 'the base''s (0 when the base has no live window)',
    siblings_median_velocity Float64 COMMENT 'median velocity of the base''s live derivatives',
    derivatives_of_base      UInt64 COMMENT 'the base''s live derivatives',
    breakout_score           Float64 COMMENT 'velocity / max(base velocity, siblings'' median, 1)'
)
ENGINE = MergeTree
ORDER BY (breakout_score, model);

CREATE MATERIALIZED VIEW IF NOT EXISTS breakouts_now_refresh
REFRESH EVERY 60 SECOND RANDOMIZE FOR 20 SECOND TO breakouts_now AS
WITH
    live AS (
        SELECT repo_id, velocity_per_hour AS velocity
        FROM engagement_live FINAL
        WHERE at >= (SELECT max(at) FROM engagement_live) - INTERVAL 1 DAY
    ),
    placed AS (
        -- Its siblings' median in the same pass (a window), not by reading the lookup again.
        SELECT f.model_id AS model_id, f.parent_id AS parent_id, f.root_id AS root_id,
               f.relation AS relation, l.velocity AS velocity,
               median(l.velocity) OVER (PARTITION BY f.parent_id) AS median_velocity,
               count() OVER (PARTITION BY f.parent_id) AS derivatives
        FROM model_lineage AS f FINAL
        INNER JOIN live AS l ON l.repo_id = f.model_id
        WHERE f.is_deleted = 0 AND f.parent_id != ''
    )
SELECT
    p.model_id AS model,
    p.parent_id AS base,
    p.relation AS relation,
    p.root_id AS root,
    p.velocity AS velocity_per_hour,
    b.velocity AS base_velocity_per_hour,
    round(p.median_velocity, 3) AS siblings_median_velocity,
    p.derivatives AS derivatives_of_base,
    round(p.velocity / greatest(b.velocity, p.median_velocity, 1), 3) AS breakout_score
FROM placed AS p
LEFT JOIN live AS b ON b.repo_id = p.parent_id
WHERE breakout_score > 1;

-- engagement's "now" (hubwatch/queries/engagement.sql): the live windows of the 10,000
-- models that gained most downloads in their last 24 hours, among those snapshotted in the
-- day before the newest snapshot. The query's default limit is 1,000; a larger limit
-- reads engagement_live itself.
CREATE TABLE IF NOT EXISTS engagement_top
(
    repo_id           String COMMENT 'Hub repo id',
    at                DateTime64(3, 'UTC') COMMENT 'time of the snapshot the windows end at',
    likes_1h          Int64 COMMENT 'likes gained in the hour before at',
    likes_24h         Int64 COMMENT 'likes gained in the 24 hours before at',
    likes_7d          Int64 COMMENT 'likes gained in the 7 days before at',
    downloads_1h      Int64 COMMENT 'downloads gained in the hour before at',
    downloads_24h     Int64 COMMENT 'downloads gained in the 24 hours before at',
    downloads_7d      Int64 COMMENT 'downloads gained in the 7 days before at',
    velocity_per_hour Float64 COMMENT 'downloads_24h per hour of the span its snapshots cover (at least 1 hour)',
    acceleration      Float64 COMMENT 'velocity minus the velocity of the 24 hours before'
)
ENGINE = MergeTree
ORDER BY (downloads_24h, repo_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement_top_refresh
REFRESH EVERY 60 SECOND RANDOMIZE FOR 20 SECOND TO engagement_top AS
SELECT repo_id, at, likes_1h, likes_24h, likes_7d, downloads_1h, downloads_24h, downloads_7d,
       velocity_per_hour, acceleration
FROM engagement_live FINAL
WHERE at >= (SELECT max(at) FROM engagement_live) - INTERVAL 1 DAY
ORDER BY downloads_24h DESC, repo_id
LIMIT 10000;
