-- Which models' cards link each GitHub repo, the other way round from models.github_repos
-- and sorted by the GitHub repo: community_activity attributes a week's GitHub activity
-- to models by reading the few links of the repos that had any, not every models row.
-- Kept by a materialized view; a link once seen stays (as it does in unmerged models rows).
CREATE TABLE IF NOT EXISTS github_links
(
    github_repo String COMMENT 'GitHub owner/name a model card links',
    repo_id     String COMMENT 'Hub repo id of the model whose card links it'
)
ENGINE = ReplacingMergeTree
ORDER BY (github_repo, repo_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS github_links_mv TO github_links AS
SELECT github_repo, repo_id
FROM models
ARRAY JOIN github_repos AS github_repo;

-- Models written before this migration (after the view exists: a row written meanwhile is
-- in both, which the sort key replaces).
INSERT INTO github_links
SELECT DISTINCT github_repo, repo_id
FROM models
ARRAY JOIN github_repos AS github_repo;
