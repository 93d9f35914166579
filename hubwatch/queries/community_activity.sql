-- Community activity as of {at:DateTime}, per {by:String} (model, family, org or
-- architecture): Hub commits, discussions and pull requests, GitHub commits, issues and
-- pull requests, and releases in the last 1 hour, 24 hours and 7 days. GitHub activity
-- counts for every model whose card links the repo; a family is its root model.
WITH
    toDateTime64({at:DateTime}, 3, 'UTC') AS t,
    recent AS (
        SELECT source, repo, kind, is_pull_request, at
        FROM community_events FINAL
        WHERE at < t AND at >= t - INTERVAL 7 DAY
    ),
    linked AS (
        -- No FINAL: a model's links are the same in every copy of its row; DISTINCT dedupes.
        SELECT DISTINCT repo_id, arrayJoin(github_repos) AS github_repo
        FROM models
        WHERE notEmpty(github_repos)
    ),
    attributed AS (
        SELECT repo AS model_id, kind, is_pull_request, at FROM recent WHERE source = 'hub'
        UNION ALL
        SELECT l.repo_id AS model_id, r.kind AS kind, r.is_pull_request AS is_pull_request,
               r.at AS at
        FROM recent AS r
        INNER JOIN linked AS l ON l.github_repo = r.repo
        WHERE r.source = 'github'
    ),
    described AS (
        SELECT a.model_id AS model_id, a.kind AS kind, a.is_pull_request AS is_pull_request,
               a.at AS at, m.author AS org,
               if(empty(m.architectures), m.model_type, m.architectures[1]) AS architecture,
               if(f.root_id = '', a.model_id, f.root_id) AS family
        FROM attributed AS a
        LEFT JOIN (
            SELECT repo_id, author, architectures, model_type FROM models FINAL
            WHERE repo_id IN (SELECT model_id FROM attributed)
        ) AS m ON m.repo_id = a.model_id
        LEFT JOIN (
            SELECT model_id, root_id FROM model_families FINAL
            WHERE model_id IN (SELECT model_id FROM attributed)
        ) AS f ON f.model_id = a.model_id
    )
SELECT
    multiIf(
        {by:String} = 'model', model_id,
        {by:String} = 'family', family,
        {by:String} = 'org', if(org = '', splitByChar('/', model_id)[1], org),
        architecture
    ) AS group_key,
    countIf(kind = 'model.commit' AND at >= t - INTERVAL 1 HOUR) AS hub_commits_1h,
    countIf(kind = 'model.commit' AND at >= t - INTERVAL 24 HOUR) AS hub_commits_24h,
    countIf(kind = 'model.commit') AS hub_commits_7d,
    countIf(kind = 'model.discussion' AND at >= t - INTERVAL 24 HOUR) AS discussions_24h,
    countIf(kind = 'model.discussion') AS discussions_7d,
    countIf(kind = 'model.discussion' AND is_pull_request) AS hub_pull_requests_7d,
    countIf(kind = 'github.commit' AND at >= t - INTERVAL 24 HOUR) AS github_commits_24h,
    countIf(kind = 'github.commit') AS github_commits_7d,
    countIf(kind = 'github.issue' AND NOT is_pull_request) AS github_issues_7d,
    countIf(kind = 'github.issue' AND is_pull_request) AS github_pull_requests_7d,
    countIf(kind = 'github.release') AS releases_7d,
    count() AS events_7d
FROM described
WHERE throwIf({by:String} NOT IN ('model', 'family', 'org', 'architecture'),
              'by must be model, family, org or architecture') = 0
GROUP BY group_key
ORDER BY events_7d DESC, group_key
