-- Size reduction against accuracy loss for quantized models, per board: the same model
-- scored at a quantized precision (4bit, 8bit, GPTQ) against its own full-precision score
-- (pairing same_model), and a Hub quantization of a base (derivation_pairs relation
-- quantized) against the base's full-precision score (pairing quantized_repo). The size
-- ratio is measured where the Hub knows both weights (size_source hub: size_bytes of the
-- two repos); else it is the assumption bits / 16 (size_source assumed_bits/16: the repo's
-- own bits where known, else 8bit 0.5, 4bit and GPTQ 0.25).
-- Columns: board, precision, pairing, size_source, models, size_ratio (median),
-- median_delta, worst_delta, share_within_1_point (|delta| <= 1: within one point either
-- way). Full precision is float16, bfloat16 or float32 (as score_delta and the report).
-- No rows: hubwatch query says why.
WITH
    scores AS (
        SELECT board, model_id, toString(precision) AS precision, score
        FROM leaderboard_scores FINAL
        WHERE benchmark = 'average'
    ),
    full AS (
        SELECT board, model_id, max(score) AS score
        FROM scores WHERE precision IN ('float16', 'bfloat16', 'float32')
        GROUP BY board, model_id
    ),
    quantized AS (
        SELECT derivative_id, base_model_id FROM derivation_pairs WHERE relation = 'quantized'
    ),
    hub AS (
        SELECT repo_id, size_bytes, quant_bits FROM models FINAL
        WHERE repo_id IN (SELECT derivative_id FROM quantized)
            OR repo_id IN (SELECT base_model_id FROM quantized)
    ),
    derivatives AS (
        -- A quantized repo's own score: its best row at whatever precision it was run.
        SELECT board, model_id, argMax(precision, score) AS precision, max(score) AS best
        FROM scores WHERE model_id IN (SELECT derivative_id FROM quantized)
        GROUP BY board, model_id
    ),
    pairs AS (
        SELECT q.board AS board, q.precision AS precision, 'same_model' AS pairing,
               q.score - f.score AS delta, CAST(NULL, 'Nullable(Float64)') AS measured,
               CAST(multiIf(q.precision = '8bit', 0.5, 0.25), 'Nullable(Float64)') AS assumed
        FROM scores AS q
        INNER JOIN full AS f ON f.model_id = q.model_id AND f.board = q.board
        WHERE q.precision IN ('4bit', '8bit', 'GPTQ')
        UNION ALL
        SELECT c.board, c.precision, 'quantized_repo', c.best - f.score,
               if(d.size_bytes > 0 AND b.size_bytes > 0, d.size_bytes / b.size_bytes, NULL),
               multiIf(d.quant_bits > 0, d.quant_bits / 16, c.precision = '8bit', 0.5,
                       c.precision IN ('4bit', 'GPTQ'), 0.25, NULL)
        FROM quantized AS e
        INNER JOIN derivatives AS c ON c.model_id = e.derivative_id
        INNER JOIN full AS f ON f.model_id = e.base_model_id AND f.board = c.board
        LEFT JOIN hub AS d ON d.repo_id = e.derivative_id
        LEFT JOIN hub AS b ON b.repo_id = e.base_model_id
        SETTINGS join_use_nulls = 1
    )
SELECT
    board,
    precision,
    pairing,
    if(measured IS NULL, 'assumed_bits/16', 'hub') AS size_source,
    count() AS models,
    round(median(coalesce(measured, assumed)), 3) AS size_ratio,
    round(median(delta), 3) AS median_delta,
    round(min(delta), 3) AS worst_delta,
    round(avg(abs(delta) <= 1), 3) AS share_within_1_point
FROM pairs
GROUP BY board, precision, pairing, size_source
ORDER BY board, precision, pairing, size_source
