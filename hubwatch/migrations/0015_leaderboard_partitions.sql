-- One partition per board, so `hubwatch import leaderboard` publishes a whole file at once
-- with ALTER TABLE … REPLACE PARTITION (atomic): a re-import replaces the board's rows
-- instead of doubling them until a merge, and a failed import leaves the old ones.
-- The partition key cannot be altered in place: copy into a partitioned twin, swap the
-- two with EXCHANGE TABLES (atomic), drop the old. Re-running it after a crash is harmless.
DROP TABLE IF EXISTS leaderboard_scores_by_board;
CREATE TABLE leaderboard_scores_by_board AS leaderboard_scores
ENGINE = ReplacingMergeTree(imported_at)
PARTITION BY board
ORDER BY (board, model_id, precision, benchmark);
INSERT INTO leaderboard_scores_by_board SELECT * FROM leaderboard_scores;
EXCHANGE TABLES leaderboard_scores AND leaderboard_scores_by_board;
-- Rows written live (card scores) between the copy and the exchange went to the old table:
-- copy those over too, and only those (no doubled rows waiting for a merge).
INSERT INTO leaderboard_scores SELECT * FROM leaderboard_scores_by_board
WHERE (board, model_id, precision, benchmark) NOT IN
    (SELECT board, model_id, precision, benchmark FROM leaderboard_scores);
DROP TABLE leaderboard_scores_by_board;

DROP TABLE IF EXISTS leaderboard_edges_by_board;
CREATE TABLE leaderboard_edges_by_board AS leaderboard_edges
ENGINE = ReplacingMergeTree(imported_at)
PARTITION BY board
ORDER BY (derivative_id, base_model_id);
INSERT INTO leaderboard_edges_by_board SELECT * FROM leaderboard_edges;
EXCHANGE TABLES leaderboard_edges AND leaderboard_edges_by_board;
-- Rows written live (card scores) between the copy and the exchange went to the old table:
-- copy those over too, and only those.
INSERT INTO leaderboard_edges SELECT * FROM leaderboard_edges_by_board
WHERE (derivative_id, base_model_id) NOT IN
    (SELECT derivative_id, base_model_id FROM leaderboard_edges);
DROP TABLE leaderboard_edges_by_board;
