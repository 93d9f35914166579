-- Size reduction against accuracy loss for quantized models: the same model scored at a
-- quantized precision (4bit, 8bit, GPTQ) and at full precision (float16/bfloat16). Per
-- quantized precision: models, size ratio (bits / 16), median and worst average delta,
-- share that lose less than one point.
WITH scores AS (
    SELECT board, model_id, precision, score
    FROM leaderboard_scores FINAL
    WHERE benchmark = 'average'
),
full AS (
    SELECT board, model_id, max(score) AS score
    FROM scores WHERE precision IN ('float16', 'bfloat16')
    GROUP BY board, model_id
)
SELECT
    q.precision AS precision,
    count() AS models,
    multiIf(q.precision = '8bit', 0.5, 0.25) AS size_ratio,
    round(median(q.score - f.score), 3) AS median_delta,
    round(min(q.score - f.score), 3) AS worst_delta,
    round(avg(q.score - f.score > -1), 3) AS share_within_1_point
FROM scores AS q
INNER JOIN full AS f ON f.model_id = q.model_id AND f.board = q.board
WHERE q.precision IN ('4bit', '8bit', 'GPTQ')
GROUP BY precision
ORDER BY precision
