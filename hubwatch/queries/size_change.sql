-- Do derivatives get smaller? Every pair of size_pairs (the one definition, migration 0041:
-- a derivative and its primary base in the Hub's family trees, and pairs only a board
-- names; the Hub's sizes, else a board's params_billions looked up at the canonical id):
-- the ratio derivative / base, grouped {by:String} = relation | architecture | base | root
-- (the family root), the 1,000 largest groups. `hubwatch report` reads the same view.
-- Columns: group, edges, median_parameter_ratio, median_byte_ratio (Hub sizes only),
-- share_smaller (in bytes where both weights are known, else in parameters),
-- board_parameters (edges whose parameter ratio used a board's count for either end).
-- An unknown architecture is the empty string, as in score_delta.
-- As of the last refresh of its summary (every 5 minutes; `hubwatch query --fresh` recomputes
-- now): the answer is computed once per refresh in migration 0045, this reads it.
-- summary: size_change_refresh
-- param by: group the pairs by relation, architecture, base or root
SELECT `group` AS group, edges, median_parameter_ratio, median_byte_ratio, share_smaller,
       board_parameters
FROM size_change_summary
WHERE by = {by:String}
    AND (SELECT throwIf({by:String} NOT IN ('relation', 'architecture', 'base', 'root'),
                'by must be relation, architecture, base or root')) = 0
ORDER BY edges DESC, group
LIMIT 1000
