-- Which benchmarks improve? Per benchmark, over every derivation edge with scores on both
-- ends (same board and benchmark): edges, median delta, share that improve.
WITH
    best AS (
        SELECT board, model_id, benchmark,
               argMax(score, (precision IN ('float16', 'bfloat16', 'float32'), score)) AS score
        FROM leaderboard_scores FINAL
        GROUP BY board, model_id, benchmark
    ),
    edges AS (
        SELECT DISTINCT derivative_id, base_model_id
        FROM (
            SELECT derivative_id, base_model_id FROM lineage_edges FINAL
            UNION ALL
            SELECT derivative_id, base_model_id FROM leaderboard_edges FINAL
        )
    )
SELECT
    c.board AS board,
    c.benchmark AS benchmark,
    count() AS edges,
    round(median(c.score - b.score), 3) AS median_delta,
    round(avg(c.score > b.score), 3) AS share_improved
FROM edges AS e
INNER JOIN best AS c ON c.model_id = e.derivative_id
INNER JOIN best AS b ON b.model_id = e.base_model_id AND b.board = c.board
    AND b.benchmark = c.benchmark
GROUP BY board, benchmark
ORDER BY board, benchmark
