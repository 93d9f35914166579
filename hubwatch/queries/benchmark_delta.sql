-- Which benchmarks improve? Per board and benchmark, over every derivation pair
-- (derivation_pairs) with scores on both ends on the same board and benchmark, each model
-- at the precision of its best full-precision average (else its best): edges, median delta, share that
-- improve. Columns: board, benchmark, edges, median_delta, share_improved.
-- No rows: hubwatch query says why.
WITH
    -- Every id at its canonical name (model_aliases, one hop deep): a board row or a pair
    -- naming a renamed repo's old name, or another casing, counts for the repo.
    (SELECT (groupArray(alias_id), groupArray(canonical_id)) FROM model_aliases FINAL) AS aliases,
    named AS (
        SELECT *, transform(model_id, aliases.1, aliases.2, model_id) AS canonical
        FROM leaderboard_scores FINAL
    ),
    chosen AS (
        -- One row per model and board: the name and precision of its best full-precision
        -- average (card scores have no average and one precision), so every benchmark of a
        -- model comes from the same evaluation.
        SELECT board, canonical,
               argMax((model_id, precision), (precision IN ('float16', 'bfloat16', 'float32'),
                                  if(benchmark = 'average', score, -inf))) AS picked
        FROM named
        GROUP BY board, canonical
    ),
    best AS (
        SELECT s.board AS board, s.canonical AS model_id, s.benchmark AS benchmark,
               s.score AS score
        FROM named AS s
        INNER JOIN chosen AS p
            ON p.board = s.board AND p.canonical = s.canonical
            AND p.picked.1 = s.model_id AND p.picked.2 = s.precision
    ),
    pairs AS (
        -- derivation_pairs at canonical ids: a pair named under two names of one repo
        -- counts once, with the Hub's relation where the Hub names it (as the view does).
        SELECT d AS derivative_id, b AS base_model_id,
               if(hub != '', hub, board) AS relation,
               multiIf(hub != '' AND board != '', 'hub+board', hub != '', 'hub', 'board')
                   AS source,
               hub != '' AND board != '' AND hub != board AS disputed
        FROM (
            SELECT transform(derivative_id, aliases.1, aliases.2, derivative_id) AS d,
                   transform(base_model_id, aliases.1, aliases.2, base_model_id) AS b,
                   anyIf(hub_relation, hub_relation != '') AS hub,
                   anyIf(board_relation, board_relation != '') AS board
            FROM derivation_pairs
            GROUP BY d, b
        )
        WHERE d != b
    )
SELECT
    c.board AS board,
    c.benchmark AS benchmark,
    count() AS edges,
    round(median(c.score - b.score), 3) AS median_delta,
    round(avg(c.score > b.score), 3) AS share_improved
FROM pairs AS e
INNER JOIN best AS c ON c.model_id = e.derivative_id
INNER JOIN best AS b ON b.model_id = e.base_model_id AND b.board = c.board
    AND b.benchmark = c.benchmark
GROUP BY board, benchmark
ORDER BY board, benchmark
