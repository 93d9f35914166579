-- Community activity as of {at:DateTime}, per {by:String} (model, family, org or
-- architecture), the {limit:UInt32} most active groups: distinct Hub commits, discussions
-- and pull requests, GitHub commits, issues, pull requests and releases in the last 1
-- hour, 24 hours and 7 days. A discussion, issue or pull request counts once per kind of
-- transition (opened, closed, merged, reopened) timed when its status changed, however
-- often hubwatch polled. GitHub activity counts for every model whose card links the
-- repo; a family is its root model; an org is the namespace of the model's id. Reads
-- only the 7 days before {at:DateTime}, the links of the GitHub repos active in them
-- (github_links), model_lineage by family and models by architecture. "Now" ({at:DateTime}
-- at or up to 5 minutes after the last refresh of the community_activity_now summary,
-- every 120 s; migration 0049) is answered from that summary, as of its refresh; an
-- earlier {at:DateTime} is counted from those tables.
-- summary: community_activity_now_refresh
-- defaults: at=now by=model limit=1000
-- param at: count the week before this UTC time, YYYY-MM-DD HH:MM:SS (now: the live summary)
-- param by: group by model, family (its root), org (the id's namespace) or architecture
-- param limit: how many groups to list, the most active first
WITH
    toDateTime64({at:DateTime}, 3, 'UTC') AS t,
    -- A constant per query: one of the two answers below reads nothing.
    (SELECT max(as_of) FROM community_activity_now) AS summary_at,
    -- {at:DateTime} is in whole seconds: the refresh's own second is "now" too.
    t >= toStartOfSecond(summary_at) AND t < summary_at + INTERVAL 5 MINUTE AS now_,
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
            WHERE NOT now_ AND at < t AND at >= t - INTERVAL 7 DAY
        )
        GROUP BY source, repo
    ),
    active AS (
        -- The week's repos alone (ClickHouse inlines a WITH query wherever it is named:
        -- the counts above are computed once, in the last join).
        SELECT DISTINCT source, repo
        FROM community_events
        WHERE NOT now_ AND at < t AND at >= t - INTERVAL 7 DAY
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
    -- Lookups without FINAL, each read only for its grouping. A model's family: its newest
    -- model_lineage row (a placement wins over a deletion of the same version); none: its
    -- own. Its architecture: from its newest models row.
    families AS (
        SELECT model_id, argMax((root_id, is_deleted), rank) AS newest
        FROM model_lineage
        WHERE {by:String} = 'family' AND model_id IN (SELECT model_id FROM attributed)
        GROUP BY model_id
        HAVING newest.2 = 0
    ),
    architectures AS (
        SELECT repo_id,
               argMax(if(empty(architectures), model_type, architectures[1]),
                      observed_at) AS architecture
        FROM models
        WHERE {by:String} = 'architecture' AND repo_id IN (SELECT model_id FROM attributed)
        GROUP BY repo_id
    ),
    grouped AS (
        -- Each repo once per group, however many of the group's models link it.
        SELECT DISTINCT
            multiIf(
                {by:String} = 'model', a.model_id,
                {by:String} = 'family', if(f.newest.1 = '', a.model_id, f.newest.1),
                -- A Hub repo id is its author's namespace, then the name.
                {by:String} = 'org', splitByChar('/', a.model_id)[1],
                m.architecture
            ) AS group_key,
            a.source AS source, a.repo AS repo
        FROM attributed AS a
        LEFT JOIN families AS f ON f.model_id = a.model_id
        LEFT JOIN architectures AS m ON m.repo_id = a.model_id
    ),
    past AS (
        SELECT
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
            sum(r.items_7d) AS items_7d
        FROM grouped AS g
        INNER JOIN per_repo AS r ON r.source = g.source AND r.repo = g.repo
        GROUP BY group_key
    )
SELECT *
FROM (
    -- The summary's columns are the answer's, in its order.
    SELECT * EXCEPT (by, as_of)
    FROM community_activity_now
    WHERE now_ AND by = {by:String}
    UNION ALL
    SELECT * FROM past
)
WHERE throwIf({by:String} NOT IN ('model', 'family', 'org', 'architecture'),
              'by must be model, family, org or architecture') = 0
ORDER BY items_7d DESC, group_key
LIMIT {limit:UInt32}
