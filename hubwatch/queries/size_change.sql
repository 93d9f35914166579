-- Do derivatives get smaller? Every pair of size_pairs (the one definition, migration 0041:
-- a derivative and its primary base in the Hub's family trees, and pairs only a board
-- names; the Hub's sizes, else a board's params_billions looked up at the canonical id):
-- the ratio derivative / base, grouped {by:String} = relation | architecture | base | root
-- (the family root), the 1,000 largest groups. `hubwatch report` reads the same view.
-- Columns: group, edges, median_parameter_ratio, median_byte_ratio (Hub sizes only),
-- share_smaller (in bytes where both weights are known, else in parameters),
-- board_parameters (edges whose parameter ratio used a board's count for either end).
-- An unknown architecture is the empty string, as in score_delta.
SELECT
    multiIf({by:String} = 'relation', relation,
            {by:String} = 'architecture', architecture,
            {by:String} = 'base', base_model_id,
            root_id) AS group,
    count() AS edges,
    round(median(parameter_ratio), 3) AS median_parameter_ratio,
    round(median(byte_ratio), 3) AS median_byte_ratio,
    round(avg(smaller), 3) AS share_smaller,
    countIf(parameters_source NOT IN ('', 'hub')) AS board_parameters
FROM size_pairs
WHERE throwIf({by:String} NOT IN ('relation', 'architecture', 'base', 'root'),
              'by must be relation, architecture, base or root') = 0
GROUP BY group
ORDER BY edges DESC, group
LIMIT 1000
