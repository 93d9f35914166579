-- What the remaining columns mean, for users who query the tables directly (docs/schema.md).
ALTER TABLE models
    COMMENT COLUMN author 'Hub namespace (user or org) that owns the repo',
    COMMENT COLUMN last_modified 'lastModified when first seen',
    COMMENT COLUMN sha 'head commit when first seen',
    COMMENT COLUMN private 'NULL when the listing did not say',
    COMMENT COLUMN pipeline_tag 'the Hub task, e.g. text-generation',
    COMMENT COLUMN library_name 'transformers, peft, gguf, mlx, ...',
    COMMENT COLUMN tags 'the Hub tags, verbatim',
    COMMENT COLUMN siblings_count 'files in the repo',
    COMMENT COLUMN ingested_at 'when the row was written';
ALTER TABLE lineage_edges
    COMMENT COLUMN observed_at 'when the producer saw the metadata the edge comes from',
    COMMENT COLUMN event_id 'the event this row came from',
    COMMENT COLUMN ingested_at 'when the row was written';
ALTER TABLE lineage_disputes
    COMMENT COLUMN derivative_id 'the model whose card makes the claim',
    COMMENT COLUMN base_model_id 'the base the card names',
    COMMENT COLUMN observed_at 'when the producer saw the card',
    COMMENT COLUMN event_id 'the event this row came from';
ALTER TABLE dead_letters
    COMMENT COLUMN at 'when it was rejected',
    COMMENT COLUMN detail 'what exactly was wrong (field, expected type)',
    COMMENT COLUMN key 'the record''s key, when it had one',
    COMMENT COLUMN payload_bytes 'full size of the payload';
ALTER TABLE model_snapshots
    COMMENT COLUMN repo_id 'Hub repo id',
    COMMENT COLUMN observed_at 'when the counters were read',
    COMMENT COLUMN downloads_all_time 'cumulative downloads',
    COMMENT COLUMN likes 'likes at observed_at',
    COMMENT COLUMN trending_score 'the Hub''s trendingScore',
    COMMENT COLUMN event_id 'the event this row came from';
ALTER TABLE engagement_hourly
    COMMENT COLUMN repo_id 'Hub repo id',
    COMMENT COLUMN hour 'start of the hour',
    COMMENT COLUMN likes_first 'likes at the hour''s first snapshot (argMinMerge to read)',
    COMMENT COLUMN likes_last 'likes at the hour''s last snapshot (argMaxMerge to read)',
    COMMENT COLUMN downloads_first 'all-time downloads at the hour''s first snapshot',
    COMMENT COLUMN downloads_last 'all-time downloads at the hour''s last snapshot';
ALTER TABLE community_events
    COMMENT COLUMN is_pull_request 'a Hub PR or a GitHub pull request',
    COMMENT COLUMN title 'commit title, discussion or issue title, release tag',
    COMMENT COLUMN author 'who made it, as the source names them',
    COMMENT COLUMN event_id 'the event this row came from',
    COMMENT COLUMN ingested_at 'when the row was written';
ALTER TABLE github_repo_snapshots
    COMMENT COLUMN repo 'GitHub owner/name',
    COMMENT COLUMN observed_at 'when the counts were read',
    COMMENT COLUMN stars 'stargazers',
    COMMENT COLUMN forks 'forks',
    COMMENT COLUMN open_issues 'open issues and pull requests',
    COMMENT COLUMN event_id 'the event this row came from';
ALTER TABLE leaderboard_scores
    COMMENT COLUMN board 'open_llm_v1 or open_llm_v2 (imported dumps), or card (the model card''s model-index)',
    COMMENT COLUMN architecture 'the board''s architecture, or config.architectures[1] for card scores',
    COMMENT COLUMN merged 'the board says the model is a merge (v1''s inverted column corrected)',
    COMMENT COLUMN imported_at 'when the row was written';
ALTER TABLE leaderboard_edges
    COMMENT COLUMN derivative_id 'the model the board lists',
    COMMENT COLUMN base_model_id 'its metadata_base_model',
    COMMENT COLUMN board 'open_llm_v2',
    COMMENT COLUMN imported_at 'when the row was written';
