-- The Architectures dashboard's table ("Derivatives per architecture") as a summary
-- (hubwatch/summaries.py): per architecture and day of creation, the derivatives, how many
-- have a leaderboard average on the same board as their base, and the median states of
-- that change and of the parameter ratio. Recomputed every 60 s in one pass over
-- model_families (which is sorted by root, so a time filter on it reads every row); the
-- panel merges the days of its range, a few thousand rows. ClickHouse's median is
-- quantile (a reservoir of 8,192, exact below that), so merging the days' quantile states
-- is the same computation as the median over the range's rows. The range counts whole days
-- (UTC).
CREATE TABLE IF NOT EXISTS architecture_days
(
    architecture    LowCardinality(String) COMMENT 'the derivative''s architecture (model_families)',
    day             Date COMMENT 'the day the derivative was created (UTC)',
    derivatives     UInt64 COMMENT 'derivatives created that day (Hub family trees)',
    scored          UInt64 COMMENT 'of them, those with an average on the same board as their base',
    accuracy_change AggregateFunction(quantile(0.5), Nullable(Float64))
        COMMENT 'the change of the average against the base (Open LLM v2 first)',
    size_change     AggregateFunction(quantile(0.5), Nullable(Float64))
        COMMENT 'parameters derivative / base'
)
ENGINE = MergeTree
ORDER BY (day, architecture)
COMMENT 'the Architectures panel per day, as of the last refresh of architecture_days_refresh';

CREATE MATERIALIZED VIEW IF NOT EXISTS architecture_days_refresh
REFRESH EVERY 60 SECOND RANDOMIZE FOR 20 SECOND TO architecture_days
AS WITH
    scores AS (
        SELECT board, model_id, max(score) AS score
        FROM leaderboard_scores FINAL
        WHERE benchmark = 'average'
        GROUP BY board, model_id
    ),
    deltas AS (
        -- Only scored derivatives can have a change. Open LLM v2 first where both fit.
        SELECT l.model_id AS model_id,
               argMax(c.score - b.score, multiIf(c.board = 'open_llm_v2', 3,
                      c.board = 'open_llm_v1', 2, 1)) AS delta
        FROM (
            SELECT model_id, parent_id
            FROM model_lineage FINAL
            WHERE model_id IN (SELECT model_id FROM scores)
              AND is_deleted = 0 AND parent_id != ''
        ) AS l
        INNER JOIN scores AS c ON c.model_id = l.model_id
        INNER JOIN scores AS b ON b.model_id = l.parent_id AND b.board = c.board
        GROUP BY l.model_id
    )
SELECT toString(e.architecture) AS architecture,
       toDate(e.created_at, 'UTC') AS day,
       count() AS derivatives,
       countIf(d.delta IS NOT NULL) AS scored,
       quantileState(0.5)(d.delta) AS accuracy_change,
       quantileState(0.5)(e.parameter_ratio) AS size_change
FROM (
    SELECT model_id, architecture, created_at,
           parameters / nullIf(base_parameters, 0) AS parameter_ratio
    FROM model_families FINAL
    WHERE is_deleted = 0 AND parent_id != '' AND architecture != ''
) AS e
LEFT JOIN (SELECT model_id, toNullable(delta) AS delta FROM deltas) AS d
    ON d.model_id = e.model_id
GROUP BY architecture, day;
