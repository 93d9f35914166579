-- Do derivatives score better than their base? For every derivation edge (the Hub's and
-- the leaderboard's) whose two ends have an average score on the same board: the delta
-- derivative minus base, grouped {by:String} = relation | architecture | type | base |
-- root (the base's family root, else the base): edges,
-- median delta, mean delta, share that improve.
WITH
    -- Every id at its canonical name: a board row or an edge naming a renamed repo's old
    -- name, or another casing, counts for the repo (model_aliases, one hop deep).
    (SELECT (groupArray(alias_id), groupArray(canonical_id)) FROM model_aliases FINAL) AS aliases,
    best AS (
        SELECT board, canonical AS model_id,
               argMax(score, (precision IN ('float16', 'bfloat16', 'float32'), score)) AS score,
               any(architecture) AS architecture, any(model_type) AS model_type
        FROM (
            SELECT *, transform(model_id, aliases.1, aliases.2, model_id) AS canonical
            FROM leaderboard_scores FINAL
            WHERE benchmark = 'average'
        )
        GROUP BY board, canonical
    ),
    edges AS (
        SELECT DISTINCT transform(d, aliases.1, aliases.2, d) AS derivative_id,
               transform(b, aliases.1, aliases.2, b) AS base_model_id, relation
        FROM (
            SELECT derivative_id AS d, base_model_id AS b, relation FROM lineage_edges FINAL
            UNION ALL
            SELECT derivative_id AS d, base_model_id AS b, relation FROM leaderboard_edges FINAL
        )
        WHERE derivative_id != base_model_id
    )
SELECT
    multiIf({by:String} = 'relation', e.relation,
            {by:String} = 'architecture', c.architecture,
            {by:String} = 'base', e.base_model_id,
            {by:String} = 'root', if(f.root_id = '', e.base_model_id, f.root_id),
            c.model_type) AS group,
    count() AS edges,
    round(median(c.score - b.score), 3) AS median_delta,
    round(avg(c.score - b.score), 3) AS mean_delta,
    round(avg(c.score > b.score), 3) AS share_improved
FROM edges AS e
INNER JOIN best AS c ON c.model_id = e.derivative_id
INNER JOIN best AS b ON b.model_id = e.base_model_id AND b.board = c.board
LEFT JOIN (
    SELECT model_id, root_id FROM model_families FINAL
    WHERE {by:String} = 'root' AND model_id IN (SELECT base_model_id FROM edges)
) AS f ON f.model_id = e.base_model_id
WHERE throwIf({by:String} NOT IN ('relation', 'architecture', 'type', 'base', 'root'),
              'by must be relation, architecture, type, base or root') = 0
GROUP BY group
ORDER BY edges DESC, group
