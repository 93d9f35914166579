-- Community activity: Hub commits and discussions, GitHub commits, issues, pull requests
-- and releases, one row per event (the same event delivered twice is replaced).
CREATE TABLE IF NOT EXISTS community_events
(
    kind             LowCardinality(String) COMMENT 'model.commit, model.discussion, github.commit, github.issue, github.release',
    source           LowCardinality(String) COMMENT 'hub or github',
    repo             String COMMENT 'Hub repo id or GitHub owner/name',
    item             String COMMENT 'commit id, discussion or issue number, release id',
    at               Nullable(DateTime64(3, 'UTC')) COMMENT 'when it happened upstream',
    state            LowCardinality(String) COMMENT 'discussion or issue status; empty otherwise',
    is_pull_request  Bool,
    title            String,
    author           String,
    event_id         String,
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (source, repo, kind, item, event_id);

CREATE TABLE IF NOT EXISTS github_repo_snapshots
(
    repo         String,
    observed_at  DateTime64(3, 'UTC'),
    stars        UInt64,
    forks        UInt64,
    open_issues  UInt64,
    event_id     String
)
ENGINE = ReplacingMergeTree
ORDER BY (repo, observed_at);
