-- Card scores are versioned by the card's time (the event's lastModified, else observed_at,
-- in ns), not by when they were written, so a replayed old model.created cannot overwrite
-- newer card scores. Imported boards keep version 0: an import replaces its board's
-- partition whole. The engine cannot be altered in place: copy, EXCHANGE TABLES, drop (as
-- 0015); rows already stored take their imported_at as version.
DROP TABLE IF EXISTS leaderboard_scores_versioned;
CREATE TABLE leaderboard_scores_versioned
(
    board         LowCardinality(String) COMMENT 'open_llm_v1 or open_llm_v2 (imported dumps), or card (the model card''s model-index)',
    model_id      String COMMENT 'Hub repo id',
    precision     LowCardinality(String) COMMENT 'float16, bfloat16, 4bit, 8bit, ...',
    benchmark     LowCardinality(String) COMMENT 'arc, hellaswag, mmlu, ... or average',
    score         Float64 COMMENT 'v1: raw percent; v2: normalised percent',
    model_type    LowCardinality(String) COMMENT 'the board''s type: pretrained, fine-tuned, chat, merge, ...',
    architecture  LowCardinality(String) COMMENT 'the board''s architecture, or config.architectures[1] for card scores',
    params_b      Nullable(Float64) COMMENT 'billions of parameters, as the board reports',
    merged        Nullable(Bool) COMMENT 'the board says the model is a merge (v1''s inverted column corrected)',
    imported_at   DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the row was written',
    version       UInt64 COMMENT 'card scores: the card''s time (lastModified, else observed_at) in ns, the newest wins; imported boards: 0 (an import replaces the board)'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY board
ORDER BY (board, model_id, precision, benchmark);
INSERT INTO leaderboard_scores_versioned
SELECT *, if(board = 'card', toUnixTimestamp64Nano(imported_at), 0) FROM leaderboard_scores;
EXCHANGE TABLES leaderboard_scores AND leaderboard_scores_versioned;
-- Card scores written live between the copy and the exchange went to the old table.
INSERT INTO leaderboard_scores
SELECT *, if(board = 'card', toUnixTimestamp64Nano(imported_at), 0)
FROM leaderboard_scores_versioned
WHERE (board, model_id, precision, benchmark) NOT IN
    (SELECT board, model_id, precision, benchmark FROM leaderboard_scores);
DROP TABLE leaderboard_scores_versioned;
