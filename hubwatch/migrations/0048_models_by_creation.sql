-- The Ecosystem panels ask for the models created in a range (the last 7 days by default):
-- `models` is sorted by repo_id, so that filter read every row's created_at. A projection
-- sorted by created_at holds (repo_id, created_at) in creation order, and ClickHouse reads
-- the range from it. `models` is a ReplacingMergeTree: a merge rebuilds the projection of
-- the rows it keeps (deduplicate_merge_projection_mode), so it stays the table's rows.
ALTER TABLE models MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE models ADD PROJECTION IF NOT EXISTS by_created_at
(
    SELECT repo_id, created_at ORDER BY created_at
);

ALTER TABLE models MATERIALIZE PROJECTION by_created_at SETTINGS mutations_sync = 2;
