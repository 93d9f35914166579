-- community_activity (hubwatch/queries/community_activity.sql) "now", for each grouping
-- (model, family, org, architecture: the `by` column), recomputed every 120 seconds (a
-- summary, hubwatch/summaries.py): the canned query at a time at or just after the last
-- refresh reads these rows instead of counting the week's community_events and looking
-- the models up. as_of is the time the counts are taken at: the refresh's, or just after
-- the newest event when events are stamped ahead of the server's clock (a skewed clock,
-- a generated year), so the newest event is inside the windows.
CREATE TABLE IF NOT EXISTS community_activity_now
(
    by                             LowCardinality(String) COMMENT 'model, family, org or architecture',
    group_key                      String COMMENT 'the model, family root, org or architecture',
    hub_commits_1h                 UInt64 COMMENT 'distinct Hub commits in the last hour',
    hub_commits_24h                UInt64 COMMENT 'distinct Hub commits in the last 24 hours',
    hub_commits_7d                 UInt64 COMMENT 'distinct Hub commits in the last 7 days',
    discussions_opened_24h         UInt64 COMMENT 'Hub discussions opened in the last 24 hours',
    discussions_opened_7d          UInt64 COMMENT 'Hub discussions opened in the last 7 days',
    discussions_closed_7d          UInt64 COMMENT 'Hub discussions closed in the last 7 days',
    hub_reopened_7d                UInt64 COMMENT 'Hub discussions and pull requests reopened in the last 7 days',
    hub_pull_requests_opened_7d    UInt64 COMMENT 'Hub pull requests opened in the last 7 days',
    hub_pull_requests_merged_7d    UInt64 COMMENT 'Hub pull requests merged in the last 7 days',
    github_commits_24h             UInt64 COMMENT 'distinct GitHub commits in the last 24 hours',
    github_commits_7d              UInt64 COMMENT 'distinct GitHub commits in the last 7 days',
    github_issues_opened_7d        UInt64 COMMENT 'GitHub issues opened in the last 7 days',
    github_issues_closed_7d        UInt64 COMMENT 'GitHub issues closed in the last 7 days',
    github_reopened_7d             UInt64 COMMENT 'GitHub issues and pull requests reopened in the last 7 days',
    github_pull_requests_opened_7d UInt64 COMMENT 'GitHub pull requests opened in the last 7 days',
    github_pull_requests_merged_7d UInt64 COMMENT 'GitHub pull requests merged in the last 7 days',
    releases_7d                    UInt64 COMMENT 'GitHub releases in the last 7 days',
    items_7d                       UInt64 COMMENT 'distinct items (all of the above) in the last 7 days',
    as_of                          DateTime64(3, 'UTC') COMMENT 'the counts are of the windows ending here'
)
ENGINE = MergeTree
ORDER BY (by, group_key);

CREATE MATERIALIZED VIEW IF NOT EXISTS community_activity_now_refresh
REFRESH EVERY 120 SECOND RANDOMIZE FOR 30 SECOND TO community_activity_now AS
WITH
    greatest(now64(3, 'UTC'),
             (SELECT max(at) FROM community_events) + INTERVAL 1 MILLISECOND) AS t,
    per_repo AS (
        -- Each repo's week counted once, not once per model linking it (a GitHub repo is
        -- linked from many cards): distinct items per column. A group's counts are then
        -- sums over its distinct repos, as two repos never share an item. No FINAL: every
        -- count is of distinct items, which a second copy of a row (before the merge that
        -- replaces it) cannot change. An item as a 64-bit hash: distinct counts of numbers
        -- are several times faster than of strings, and a collision among a repo's week of
        -- items is out of reach.
        SELECT source, repo,
            uniqExactIf(what, kind = 'model.commit' AND at >= t - INTERVAL 1 HOUR) AS hub_commits_1h,
            uniqExactIf(what, kind = 'model.commit' AND at >= t - INTERVAL 24 HOUR) AS hub_commits_24h,
            uniqExactIf(what, kind = 'model.commit') AS hub_commits_7d,
            uniqExactIf(what, kind = 'model.discussion' AND NOT is_pull_request
                        AND transition = 'opened' AND at >= t - INTERVAL 24 HOUR) AS discussions_opened_24h,
            uniqExactIf(what, kind = 'model.discussion' AND NOT is_pull_request
                        AND transition = 'opened') AS discussions_opened_7d,
            uniqExactIf(what, kind = 'model.discussion' AND NOT is_pull_request
                        AND transition = 'closed') AS discussions_closed_7d,
            uniqExactIf(what, kind = 'model.discussion' AND transition = 'reopened') AS hub_reopened_7d,
            uniqExactIf(what, kind = 'model.discussion' AND is_pull_request
                        AND transition = 'opened') AS hub_pull_requests_opened_7d,
            uniqExactIf(what, kind = 'model.discussion' AND is_pull_request
                        AND transition = 'merged') AS hub_pull_requests_merged_7d,
            uniqExactIf(what, kind = 'github.commit' AND at >= t - INTERVAL 24 HOUR) AS github_commits_24h,
            uniqExactIf(what, kind = 'github.commit') AS github_commits_7d,
            uniqExactIf(what, kind = 'github.issue' AND NOT is_pull_request
                        AND transition = 'opened') AS github_issues_opened_7d,
            uniqExactIf(what, kind = 'github.issue' AND NOT is_pull_request
                        AND transition = 'closed') AS github_issues_closed_7d,
            uniqExactIf(what, kind = 'github.issue' AND transition = 'reopened') AS github_reopened_7d,
            uniqExactIf(what, kind = 'github.issue' AND is_pull_request
                        AND transition = 'opened') AS github_pull_requests_opened_7d,
            uniqExactIf(what, kind = 'github.issue' AND is_pull_request
                        AND transition = 'merged') AS github_pull_requests_merged_7d,
            uniqExactIf(what, kind = 'github.release') AS releases_7d,
            uniqExact(what) AS items_7d
        FROM (
            SELECT source, repo, kind, sipHash64(item) AS what, transition, is_pull_request, at
            FROM community_events
            WHERE at < t AND at >= t - INTERVAL 7 DAY
        )
        GROUP BY source, repo
    ),
    active AS (
        -- The week's repos alone (ClickHouse inlines a WITH query wherever it is named:
        -- the counts above are computed once, in the last join).
        SELECT DISTINCT source, repo
        FROM community_events
        WHERE at < t AND at >= t - INTERVAL 7 DAY
    ),
    attributed AS (
        -- (model, repo) pairs: a Hub repo is its model; a GitHub repo counts for every model
        -- whose card links it (github_links, sorted by the GitHub repo: only the week's
        -- repos are read).
        SELECT repo AS model_id, source, repo FROM active WHERE source = 'hub'
        UNION ALL
        SELECT DISTINCT repo_id AS model_id, 'github' AS source, github_repo AS repo
        FROM github_links
        WHERE github_repo IN (SELECT repo FROM active WHERE source = 'github')
    ),
    -- Every grouping from the same counts: the lookups read once, each model's row
    -- repeated per grouping. A model's family: its newest model_lineage row (a placement
    -- wins over a deletion of the same version); none: its own. Its architecture: from its
    -- newest models row.
    families AS (
        SELECT model_id, argMax((root_id, is_deleted), rank) AS newest
        FROM model_lineage
        WHERE model_id IN (SELECT model_id FROM attributed)
        GROUP BY model_id
        HAVING newest.2 = 0
    ),
    architectures AS (
        SELECT repo_id,
               argMax(if(empty(architectures), model_type, architectures[1]),
                      observed_at) AS architecture
        FROM models
        WHERE repo_id IN (SELECT model_id FROM attributed)
        GROUP BY repo_id
    ),
    grouped AS (
        -- Each repo once per group, however many of the group's models link it.
        SELECT DISTINCT
            by,
            multiIf(
                by = 'model', a.model_id,
                by = 'family', if(f.newest.1 = '', a.model_id, f.newest.1),
                by = 'org', splitByChar('/', a.model_id)[1],
                m.architecture
            ) AS group_key,
            a.source AS source, a.repo AS repo
        FROM attributed AS a
        LEFT JOIN families AS f ON f.model_id = a.model_id
        LEFT JOIN architectures AS m ON m.repo_id = a.model_id
        ARRAY JOIN ['model', 'family', 'org', 'architecture'] AS by
    )
SELECT
    g.by AS by,
    g.group_key AS group_key,
    sum(r.hub_commits_1h) AS hub_commits_1h,
    sum(r.hub_commits_24h) AS hub_commits_24h,
    sum(r.hub_commits_7d) AS hub_commits_7d,
    sum(r.discussions_opened_24h) AS discussions_opened_24h,
    sum(r.discussions_opened_7d) AS discussions_opened_7d,
    sum(r.discussions_closed_7d) AS discussions_closed_7d,
    sum(r.hub_reopened_7d) AS hub_reopened_7d,
    sum(r.hub_pull_requests_opened_7d) AS hub_pull_requests_opened_7d,
    sum(r.hub_pull_requests_merged_7d) AS hub_pull_requests_merged_7d,
    sum(r.github_commits_24h) AS github_commits_24h,
    sum(r.github_commits_7d) AS github_commits_7d,
    sum(r.github_issues_opened_7d) AS github_issues_opened_7d,
    sum(r.github_issues_closed_7d) AS github_issues_closed_7d,
    sum(r.github_reopened_7d) AS github_reopened_7d,
    sum(r.github_pull_requests_opened_7d) AS github_pull_requests_opened_7d,
    sum(r.github_pull_requests_merged_7d) AS github_pull_requests_merged_7d,
    sum(r.releases_7d) AS releases_7d,
    sum(r.items_7d) AS items_7d,
    any(t) AS as_of
FROM grouped AS g
INNER JOIN per_repo AS r ON r.source = g.source AND r.repo = g.repo
GROUP BY by, group_key;
