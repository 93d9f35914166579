-- Which benchmarks improve? Per board and benchmark, over every derivation pair
-- (derivation_pairs) with scores on both ends on the same board and benchmark, each model
-- at the precision of its best full-precision average (else its best): edges, median delta, share that
-- improve. Columns: board, benchmark, edges, median_delta, share_improved.
-- No rows: hubwatch query says why.
WITH
    chosen AS (
        -- One row per model and board: the precision of its best full-precision average
        -- (card scores have no average and one precision), so every benchmark of a model
        -- comes from the same evaluation.
        SELECT board, model_id,
               argMax(precision, (precision IN ('float16', 'bfloat16', 'float32'),
                                  if(benchmark = 'average', score, -inf))) AS precision
        FROM leaderboard_scores FINAL
        GROUP BY board, model_id
    ),
    best AS (
        SELECT s.board AS board, s.model_id AS model_id, s.benchmark AS benchmark,
               s.score AS score
        FROM leaderboard_scores AS s FINAL
        INNER JOIN chosen AS p
            ON p.board = s.board AND p.model_id = s.model_id AND p.precision = s.precision
    )
SELECT
    c.board AS board,
    c.benchmark AS benchmark,
    count() AS edges,
    round(median(c.score - b.score), 3) AS median_delta,
    round(avg(c.score > b.score), 3) AS share_improved
FROM derivation_pairs AS e
INNER JOIN best AS c ON c.model_id = e.derivative_id
INNER JOIN best AS b ON b.model_id = e.base_model_id AND b.board = c.board
    AND b.benchmark = c.benchmark
GROUP BY board, benchmark
ORDER BY board, benchmark
