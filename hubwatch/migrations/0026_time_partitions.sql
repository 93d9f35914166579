-- A year of history without slow queries: the time series are partitioned by month and
-- sorted so that a time filter prunes parts; raw snapshots are kept 90 days (their hourly
-- aggregates for ever); community rows become one per status transition, timed when the
-- status changed. event_id leaves both tables: their sort keys are the natural keys.
-- Engine, partition and sort keys cannot be altered in place: build the twin, copy,
-- EXCHANGE TABLES (atomic), drop the old. Re-running after a crash is harmless.

-- The view is tied to the table it reads; it comes back once the new tables are in place,
-- as 0022_engagement_span left it (each hour's first and last snapshot times too).
DROP VIEW IF EXISTS engagement_hourly_mv;

DROP TABLE IF EXISTS model_snapshots_by_month;
CREATE TABLE model_snapshots_by_month
(
    repo_id             String COMMENT 'Hub repo id',
    observed_at         DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)) COMMENT 'when the poll saw the counters',
    downloads           Nullable(UInt64) CODEC(T64, ZSTD(1)) COMMENT 'last 30 days, as the Hub reports it',
    downloads_all_time  Nullable(UInt64) CODEC(T64, ZSTD(1)) COMMENT 'all downloads since the repo was created',
    likes               Nullable(UInt64) CODEC(T64, ZSTD(1)) COMMENT 'likes at observed_at',
    trending_score      Nullable(Float64) CODEC(Gorilla, ZSTD(1)) COMMENT 'the Hub''s trendingScore at observed_at'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(observed_at)
ORDER BY (repo_id, observed_at)
-- Raw polls for 90 days; engagement_hourly keeps what the queries need for ever.
TTL toDateTime(observed_at) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;
INSERT INTO model_snapshots_by_month
SELECT repo_id, observed_at, downloads, downloads_all_time, likes, trending_score
FROM model_snapshots;
EXCHANGE TABLES model_snapshots AND model_snapshots_by_month;
DROP TABLE model_snapshots_by_month;

DROP TABLE IF EXISTS engagement_hourly_by_month;
CREATE TABLE engagement_hourly_by_month
(
    hour            DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)) COMMENT 'start of the hour',
    repo_id         String COMMENT 'Hub repo id',
    likes_first     AggregateFunction(argMin, UInt64, DateTime64(3, 'UTC')) COMMENT 'likes at the hour''s first snapshot (argMinMerge to read)',
    likes_last      AggregateFunction(argMax, UInt64, DateTime64(3, 'UTC')) COMMENT 'likes at the hour''s last snapshot (argMaxMerge to read)',
    downloads_first AggregateFunction(argMin, UInt64, DateTime64(3, 'UTC')) COMMENT 'all-time downloads at the hour''s first snapshot',
    downloads_last  AggregateFunction(argMax, UInt64, DateTime64(3, 'UTC')) COMMENT 'all-time downloads at the hour''s last snapshot',
    first_at        SimpleAggregateFunction(min, DateTime64(3, 'UTC')) DEFAULT hour CODEC(Delta, ZSTD(1)) COMMENT 'time of the hour''s first snapshot',
    last_at         SimpleAggregateFunction(max, DateTime64(3, 'UTC')) DEFAULT hour CODEC(Delta, ZSTD(1)) COMMENT 'time of the hour''s last snapshot'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, repo_id);
INSERT INTO engagement_hourly_by_month
SELECT hour, repo_id, likes_first, likes_last, downloads_first, downloads_last,
       first_at, last_at
FROM engagement_hourly;
EXCHANGE TABLES engagement_hourly AND engagement_hourly_by_month;
DROP TABLE engagement_hourly_by_month;

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement_hourly_mv TO engagement_hourly AS
SELECT
    toStartOfHour(observed_at) AS hour,
    repo_id,
    argMinState(ifNull(likes, 0), observed_at) AS likes_first,
    argMaxState(ifNull(likes, 0), observed_at) AS likes_last,
    argMinState(ifNull(downloads_all_time, ifNull(downloads, 0)), observed_at) AS downloads_first,
    argMaxState(ifNull(downloads_all_time, ifNull(downloads, 0)), observed_at) AS downloads_last,
    min(observed_at) AS first_at,
    max(observed_at) AS last_at
FROM model_snapshots
GROUP BY repo_id, hour;

-- One row per (item, transition): a discussion or issue opened, closed, merged or
-- reopened, at the time its status changed; commits and releases once each. The day comes
-- first in the sort key so a window reads only its days; the rest is the natural key.
DROP TABLE IF EXISTS community_events_by_month;
CREATE TABLE community_events_by_month
(
    kind             LowCardinality(String) COMMENT 'model.commit, model.discussion, github.commit, github.issue, github.release',
    source           LowCardinality(String) COMMENT 'hub or github',
    repo             String COMMENT 'Hub repo id or GitHub owner/name',
    item             String COMMENT 'commit id, discussion or issue number, release id',
    transition       LowCardinality(String) COMMENT 'opened, closed, merged or reopened for discussions, issues and pull requests; empty for commits and releases',
    at               DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)) COMMENT 'when it happened upstream: the commit, the release, the status change (1970-01-01 when unknown)',
    state            LowCardinality(String) COMMENT 'discussion or issue status as of that event; empty otherwise',
    is_pull_request  Bool COMMENT 'a pull request rather than a discussion or issue',
    title            String COMMENT 'commit title, discussion or issue title, release tag',
    author           String COMMENT 'who made it (comma-separated when several)',
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when hubwatch wrote the row; the newest copy wins'
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(at)
ORDER BY (toDate(at), kind, repo, item, transition, at);
-- Rows written before this migration: a discussion's row was its status at creation time,
-- an issue's its state at updated_at; they keep those times.
INSERT INTO community_events_by_month
SELECT kind, source, repo, item,
       multiIf(kind NOT IN ('model.discussion', 'github.issue'), '',
               state IN ('closed', 'merged'), state, 'opened') AS transition,
       ifNull(at, toDateTime64(0, 3, 'UTC')) AS at,
       state, is_pull_request, title, author, ingested_at
FROM community_events;
EXCHANGE TABLES community_events AND community_events_by_month;
DROP TABLE community_events_by_month;
