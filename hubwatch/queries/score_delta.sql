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
    -- Every id at its canonical name (model_aliases, one hop deep): a board row or a pair
    -- naming a renamed repo's old name, or another casing, counts for the repo.
    (SELECT (groupArray(alias_id), groupArray(canonical_id)) FROM model_aliases FINAL) AS aliases,
    best AS (
        SELECT board, canonical AS model_id,
               argMax((score, toString(architecture), toString(model_type)),
                      (precision IN ('float16', 'bfloat16', 'float32'), score)) AS row
        FROM (
            SELECT *, transform(model_id, aliases.1, aliases.2, model_id) AS canonical
            FROM leaderboard_scores FINAL
            WHERE benchmark = 'average'
        )
        GROUP BY board, canonical
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
FROM pairs AS e
INNER JOIN best AS c ON c.model_id = e.derivative_id
INNER JOIN best AS b ON b.model_id = e.base_model_id AND b.board = c.board
LEFT JOIN (
    SELECT model_id, root_id FROM model_families FINAL
    WHERE {by:String} = 'root' AND model_id IN (SELECT base_model_id FROM pairs)
) AS f ON f.model_id = e.base_model_id
WHERE throwIf({by:String} NOT IN ('relation', 'architecture', 'type', 'base', 'root'),
              'by must be relation, architecture, type, base or root') = 0
GROUP BY board, group
ORDER BY board, edges DESC, group
