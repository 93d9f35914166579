-- Do derivatives score better than their base? For every derivation pair (derivation_pairs:
-- the Hub's lineage and the boards' base fields, each pair once, with the Hub's relation
-- where both name it) whose two ends have an average score on the same board: the delta
-- derivative minus base, per board (boards never mix: v1 and v2 use different benchmarks
-- and scales), grouped {by:String} = relation | architecture | type | base | root (the
-- base's family root, else the base). Each model's score is its best full-precision row
-- (else its best row), and its architecture and type come from that same row.
-- Columns: board, group, edges, median_delta, mean_delta, share_improved, hub_relations
-- (pairs whose relation the Hub gave), disputed (pairs whose board base field named
-- another relation than the Hub's). No rows: hubwatch query says why.
WITH
    best AS (
        SELECT board, model_id,
               argMax((score, toString(architecture), toString(model_type)),
                      (precision IN ('float16', 'bfloat16', 'float32'), score)) AS row
        FROM leaderboard_scores FINAL
        WHERE benchmark = 'average'
        GROUP BY board, model_id
    )
SELECT
    c.board AS board,
    multiIf({by:String} = 'relation', e.relation,
            {by:String} = 'architecture', tupleElement(c.row, 2),
            {by:String} = 'base', e.base_model_id,
            {by:String} = 'root', if(f.root_id = '', e.base_model_id, f.root_id),
            tupleElement(c.row, 3)) AS group,
    count() AS edges,
    round(median(tupleElement(c.row, 1) - tupleElement(b.row, 1)), 3) AS median_delta,
    round(avg(tupleElement(c.row, 1) - tupleElement(b.row, 1)), 3) AS mean_delta,
    round(avg(tupleElement(c.row, 1) > tupleElement(b.row, 1)), 3) AS share_improved,
    countIf(e.source != 'board') AS hub_relations,
    countIf(e.disputed) AS disputed
FROM derivation_pairs AS e
INNER JOIN best AS c ON c.model_id = e.derivative_id
INNER JOIN best AS b ON b.model_id = e.base_model_id AND b.board = c.board
LEFT JOIN (
    SELECT model_id, root_id FROM model_families FINAL
    WHERE {by:String} = 'root' AND model_id IN (SELECT base_model_id FROM derivation_pairs)
) AS f ON f.model_id = e.base_model_id
WHERE throwIf({by:String} NOT IN ('relation', 'architecture', 'type', 'base', 'root'),
              'by must be relation, architecture, type, base or root') = 0
GROUP BY board, group
ORDER BY board, edges DESC, group
