-- Do derivatives get smaller? Per derivative and its primary base where both have a
-- parameter count or a size in bytes: the ratio derivative / base, grouped {by:String} =
-- relation | architecture | base | root (the family root), the 1,000 largest groups.
-- Pairs: the Hub's family trees (model_families), and pairs only a leaderboard names
-- (derivation_pairs, source board). Sizes: the Hub's (safetensors, GGUF, name); where the
-- Hub has no parameter count, the board's params_billions (v2 before v1, which rounds).
-- Columns: group, edges, median_parameter_ratio, median_byte_ratio (Hub sizes only),
-- share_smaller (in bytes where both weights are known, else in parameters),
-- board_parameters (edges whose parameter ratio used a board's count for either end).
WITH
    (SELECT (groupArray(model_id), groupArray(parameters)) FROM board_params) AS board,
    board_params AS (
        SELECT model_id, toUInt64(argMax(params_b, board) * 1e9) AS parameters
        FROM leaderboard_scores FINAL
        WHERE board IN ('open_llm_v1', 'open_llm_v2') AND params_b > 0
            AND benchmark = 'average'
        GROUP BY model_id
    ),
    hub_pairs AS (
        SELECT model_id AS derivative_id, parent_id AS base_model_id,
               toString(relation) AS relation, toString(architecture) AS architecture,
               root_id, parameters, size_bytes, base_parameters, base_size_bytes
        FROM model_families FINAL
        WHERE parent_id != ''
    ),
    -- Every id a board pair can name (derivation_pairs maps the boards' ids through
    -- model_aliases): the lookups below are read for these only. The view itself is
    -- named once: each naming of it runs it again.
    board_ids AS (
        SELECT arrayJoin([derivative_id, base_model_id]) AS id FROM leaderboard_edges
        UNION ALL
        SELECT canonical_id FROM model_aliases
    ),
    board_only AS (
        -- The family trees looked up only for the few models a board names (bloom filter
        -- on model_id), not read whole a second time.
        SELECT derivative_id, base_model_id, relation
        FROM derivation_pairs
        WHERE source = 'board' AND derivative_id NOT IN (
            SELECT model_id FROM model_families FINAL
            WHERE parent_id != '' AND model_id IN board_ids
        )
    ),
    hub_models AS (
        SELECT repo_id, parameters, size_bytes,
               if(empty(architectures), '', toString(architectures[1])) AS architecture
        FROM models FINAL
        WHERE repo_id IN board_ids
    ),
    board_arch AS (
        SELECT model_id, argMax(toString(architecture), board) AS architecture
        FROM leaderboard_scores FINAL
        WHERE benchmark = 'average' AND model_id IN board_ids
        GROUP BY model_id
    ),
    pairs AS (
        SELECT derivative_id, base_model_id, relation, architecture, root_id,
               parameters, size_bytes, base_parameters, base_size_bytes
        FROM hub_pairs
        UNION ALL
        SELECT o.derivative_id, o.base_model_id, o.relation,
               if(d.architecture != '', d.architecture, a.architecture), o.base_model_id,
               d.parameters, d.size_bytes, b.parameters, b.size_bytes
        FROM board_only AS o
        LEFT JOIN hub_models AS d ON d.repo_id = o.derivative_id
        LEFT JOIN hub_models AS b ON b.repo_id = o.base_model_id
        LEFT JOIN board_arch AS a ON a.model_id = o.derivative_id
        SETTINGS join_use_nulls = 1
    ),
    sized AS (
        -- The boards' counts by lookup (transform over two arrays), not by joining every
        -- pair: a board names few models, and a join would carry each pair's columns.
        SELECT p.*,
               if(p.parameters > 0, p.parameters,
                  nullIf(transform(p.derivative_id, board.1, board.2, 0), 0)) AS d_params,
               if(p.base_parameters > 0, p.base_parameters,
                  nullIf(transform(p.base_model_id, board.1, board.2, 0), 0)) AS b_params,
               NOT (ifNull(p.parameters, 0) > 0 AND ifNull(p.base_parameters, 0) > 0)
                   AND ifNull(d_params, 0) > 0 AND ifNull(b_params, 0) > 0 AS from_board,
               ifNull(p.size_bytes, 0) > 0 AND ifNull(p.base_size_bytes, 0) > 0 AS bytes_known
        FROM pairs AS p
    )
SELECT
    multiIf({by:String} = 'relation', relation,
            {by:String} = 'architecture', architecture,
            {by:String} = 'base', base_model_id,
            root_id) AS group,
    count() AS edges,
    round(medianIf(d_params / b_params, d_params > 0 AND b_params > 0), 3)
        AS median_parameter_ratio,
    round(medianIf(size_bytes / base_size_bytes, bytes_known), 3) AS median_byte_ratio,
    round(avg(if(bytes_known, size_bytes < base_size_bytes, d_params < b_params)), 3)
        AS share_smaller,
    countIf(from_board) AS board_parameters
FROM sized
WHERE (d_params > 0 AND b_params > 0 OR bytes_known)
    AND throwIf({by:String} NOT IN ('relation', 'architecture', 'base', 'root'),
                'by must be relation, architecture, base or root') = 0
GROUP BY group
ORDER BY edges DESC, group
LIMIT 1000
