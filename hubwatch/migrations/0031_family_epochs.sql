-- model_families rows are versioned by the data (the forest's newest observed_at, in ns,
-- above every earlier write of the same forest), no longer by the write time.
ALTER TABLE model_families
    COMMENT COLUMN version 'the newest observed_at the writing forest had seen, in ns (and above its earlier writes): the newest row of a (root, model) wins';

-- The forest has one owner at a time. A backfill builds it outside the processor; when it
-- is done it records an epoch here, and a running processor reloads its forest from
-- model_families before its next batch (processors/restore.py, ForestKeeper), so its stale
-- forest never writes over the backfill's families.
CREATE TABLE IF NOT EXISTS family_epochs
(
    epoch   UInt64 COMMENT 'the version of the writer''s last model_families rows: a processor that loaded below it reloads',
    writer  LowCardinality(String) COMMENT 'who rebuilt the families: backfill',
    at      DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the writer finished'
)
ENGINE = MergeTree
ORDER BY epoch;
