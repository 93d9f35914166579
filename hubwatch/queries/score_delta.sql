-- Do derivatives score better than their base? Every pair of scored_pairs (the one
-- definition, migration 0041: a pair the Hub's lineage or any board's base field names,
-- both ends at canonical ids and scored on the same board, each model by its best
-- full-precision average with its architecture and type from that row): the delta
-- derivative minus base, per board (boards never mix: v1 and v2 use different benchmarks
-- and scales), grouped {by:String} = relation | architecture | type | base | root (the
-- base's family root, else the base). `hubwatch report` reads the same view.
-- Columns: board, group, edges, median_delta, mean_delta, share_improved, hub_relations
-- (pairs whose relation the Hub gave), disputed (pairs whose board base field named
-- another relation than the Hub's). No rows: hubwatch query says why.
-- As of the last refresh of its summary (every 60 s; `hubwatch query --fresh` recomputes
-- now): the answer is computed once per refresh in migration 0045, this reads it.
-- summary: score_delta_refresh
-- param by: group the pairs by relation, architecture, type, base or root
SELECT board, `group` AS group, edges, median_delta, mean_delta, share_improved,
       hub_relations, disputed
FROM score_delta_summary
WHERE by = {by:String}
    AND (SELECT throwIf({by:String} NOT IN ('relation', 'architecture', 'type', 'base', 'root'),
                'by must be relation, architecture, type, base or root')) = 0
ORDER BY board, edges DESC, group
