-- Which benchmarks improve? Per benchmark, over every derivation edge with scores on both
-- ends (same board and benchmark): edges, median delta, share that improve.
WITH
    -- Every id at its canonical name (model_aliases), as in score_delta.
    (SELECT (groupArray(alias_id), groupArray(canonical_id)) FROM model_aliases FINAL) AS aliases,
    best AS (
        SELECT board, canonical AS model_id, benchmark,
               argMax(score, (precision IN ('float16', 'bfloat16', 'float32'), score)) AS score
        FROM (
            SELECT *, transform(model_id, aliases.1, aliases.2, model_id) AS canonical
            FROM leaderboard_scores FINAL
        )
        GROUP BY board, canonical, benchmark
    ),
    edges AS (
        SELECT DISTINCT transform(d, aliases.1, aliases.2, d) AS derivative_id,
               transform(b, aliases.1, aliases.2, b) AS base_model_id
        FROM (
            SELECT derivative_id AS d, base_model_id AS b FROM lineage_edges FINAL
            UNION ALL
            SELECT derivative_id AS d, base_model_id AS b FROM leaderboard_edges FINAL
        )
        WHERE derivative_id != base_model_id
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
