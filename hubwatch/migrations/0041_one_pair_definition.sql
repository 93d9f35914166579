-- What a board says about its rows beyond the scores: the licence it read from the Hub and
-- its own dates, so the report's licences along lineage use a board's licence where the
-- Hub has none, and board figures show the data's time range (not when it was imported).
ALTER TABLE leaderboard_scores
    ADD COLUMN IF NOT EXISTS hub_license LowCardinality(String) DEFAULT ''
        COMMENT 'the licence the board read from the Hub (v1 hub_license, v2 metadata_hub_license), empty when it gives none',
    ADD COLUMN IF NOT EXISTS submitted_at Nullable(DateTime64(3, 'UTC'))
        COMMENT 'when the model was submitted to the board (v1 date, v2 metadata_submission_date)',
    ADD COLUMN IF NOT EXISTS uploaded_at Nullable(DateTime64(3, 'UTC'))
        COMMENT 'when the model was uploaded to the Hub, as the board says (v2 metadata_upload_date)';

-- The one definition of a derivation pair whose two ends are scored on a board. A pair is
-- in derivation_pairs: the Hub's lineage or ANY board's base field names it, both ends at
-- canonical ids. Lineage is a fact about two models, not about the board that printed it:
-- v2's metadata_base_model says X derives from Y, so where v1 scores both X and Y, v1
-- compares them too (v1 has no base column of its own). Scores never pool: both ends are
-- scored on the same board. A model's score is its best full-precision average (float16,
-- bfloat16, float32), else its best; its architecture and type come from that same row (the
-- architecture from the Hub where the board has none). score_delta and `hubwatch report`
-- both read this view, so they cannot disagree. (An unmatched LEFT JOIN reads '', so
-- join_use_nulls is pinned off.)
CREATE OR REPLACE VIEW scored_pairs
(
    board           String COMMENT 'the board both ends are scored on',
    derivative_id   String COMMENT 'the model that derives (canonical id)',
    base_model_id   String COMMENT 'the model it derives from (canonical id)',
    relation        String COMMENT 'the Hub''s relation where the Hub names the pair, else the board''s',
    source          String COMMENT 'who names the pair: hub, board or hub+board',
    disputed        Bool COMMENT 'the Hub and a board name the pair with different relations',
    derivative_score Float64 COMMENT 'the derivative''s average on the board',
    base_score      Float64 COMMENT 'the base''s average on the board',
    delta           Float64 COMMENT 'derivative_score - base_score',
    architecture    String COMMENT 'the derivative''s architecture: the board row''s, else the Hub''s',
    model_type      String COMMENT 'the derivative''s type on the board',
    root_id         String COMMENT 'the base''s family root (model_families), else the base'
)
AS WITH
    (SELECT (groupArray(alias_id), groupArray(canonical_id)) FROM model_aliases FINAL) AS aliases,
    best AS (
        SELECT board, canonical AS model_id,
               argMax((score, toString(architecture), toString(model_type)),
                      (precision IN ('float16', 'bfloat16', 'float32'), score)) AS row
        FROM (
            SELECT *, transform(model_id, aliases.1, aliases.2, model_id) AS canonical
            FROM leaderboard_scores FINAL
            WHERE benchmark = 'average' AND board != 'card'
        )
        GROUP BY board, canonical
    ),
    scored AS (
        SELECT c.board AS board, e.derivative_id AS derivative_id,
               e.base_model_id AS base_model_id, e.relation AS relation, e.source AS source,
               e.disputed AS disputed, c.row AS c_row, b.row AS b_row
        FROM derivation_pairs AS e
        INNER JOIN best AS c ON c.model_id = e.derivative_id
        INNER JOIN best AS b ON b.model_id = e.base_model_id AND b.board = c.board
    )
SELECT
    s.board,
    s.derivative_id,
    s.base_model_id,
    s.relation,
    s.source,
    s.disputed,
    tupleElement(s.c_row, 1) AS derivative_score,
    tupleElement(s.b_row, 1) AS base_score,
    derivative_score - base_score AS delta,
    if(tupleElement(s.c_row, 2) != '', tupleElement(s.c_row, 2), h.architecture) AS architecture,
    tupleElement(s.c_row, 3) AS model_type,
    if(f.root_id = '', s.base_model_id, f.root_id) AS root_id
FROM scored AS s
LEFT JOIN (
    SELECT repo_id, if(empty(architectures), '', toString(architectures[1])) AS architecture
    FROM models FINAL
    WHERE repo_id IN (SELECT derivative_id FROM scored)
) AS h ON h.repo_id = s.derivative_id
LEFT JOIN (
    SELECT model_id, root_id FROM model_families FINAL
    WHERE model_id IN (SELECT base_model_id FROM scored)
) AS f ON f.model_id = s.base_model_id
SETTINGS join_use_nulls = 0;

-- The one definition of a size pair: a derivative and its primary base (the Hub's family
-- trees, model_families), and a pair only a board names (derivation_pairs, source board)
-- for a derivative the Hub has not placed under any base. Sizes: the Hub's (safetensors,
-- GGUF, name); where the Hub has no parameter count for an end, a board's params_billions
-- (v2 before v1, which rounds), looked up at the canonical id (model_aliases), so a board
-- that names a renamed repo by its old name still sizes it. size_change and the report both
-- read this view.
CREATE OR REPLACE VIEW size_pairs
(
    derivative_id          String COMMENT 'the model that derives (canonical id)',
    base_model_id          String COMMENT 'its primary base (canonical id)',
    relation               String COMMENT 'the Hub''s relation (model_families), else the board''s',
    architecture           String COMMENT 'the derivative''s: the Hub''s, else the board''s, empty when unknown',
    root_id                String COMMENT 'the family root (board-only pairs: the base)',
    pair_source            String COMMENT 'hub (model_families) or board (a board''s base field only)',
    derivative_parameters  Nullable(Float64) COMMENT 'the Hub''s count, else a board''s',
    base_parameters        Nullable(Float64) COMMENT 'the Hub''s count, else a board''s',
    parameters_source      String COMMENT 'hub when both counts are the Hub''s, else the board that gave one (open_llm_v2, open_llm_v1); empty without a ratio',
    parameter_ratio        Nullable(Float64) COMMENT 'derivative / base parameters',
    byte_ratio             Nullable(Float64) COMMENT 'derivative / base size_bytes, where the Hub knows both weights',
    smaller                Bool COMMENT 'smaller in bytes where both weights are known, else in parameters'
)
AS WITH
    (SELECT (groupArray(alias_id), groupArray(canonical_id)) FROM model_aliases FINAL) AS aliases,
    board_params AS (
        SELECT canonical AS model_id,
               argMax((toFloat64(params_b) * 1e9, toString(board)), board) AS given
        FROM (
            SELECT *, transform(model_id, aliases.1, aliases.2, model_id) AS canonical
            FROM leaderboard_scores FINAL
            WHERE board IN ('open_llm_v1', 'open_llm_v2') AND params_b > 0
                AND benchmark = 'average'
        )
        GROUP BY canonical
    ),
    hub_pairs AS (
        SELECT model_id AS derivative_id, parent_id AS base_model_id,
               toString(relation) AS relation, toString(architecture) AS architecture,
               root_id, parameters, size_bytes, base_parameters, base_size_bytes
        FROM model_families FINAL
        WHERE parent_id != ''
    ),
    board_only AS (
        SELECT derivative_id, base_model_id, relation
        FROM derivation_pairs
        WHERE source = 'board' AND derivative_id NOT IN (SELECT derivative_id FROM hub_pairs)
    ),
    hub_models AS (
        SELECT repo_id, parameters, size_bytes,
               if(empty(architectures), '', toString(architectures[1])) AS architecture
        FROM models FINAL
        WHERE repo_id IN (SELECT derivative_id FROM board_only)
            OR repo_id IN (SELECT base_model_id FROM board_only)
    ),
    board_arch AS (
        SELECT canonical AS model_id, argMax(toString(architecture), board) AS architecture
        FROM (
            SELECT *, transform(model_id, aliases.1, aliases.2, model_id) AS canonical
            FROM leaderboard_scores FINAL
            WHERE benchmark = 'average' AND board IN ('open_llm_v1', 'open_llm_v2')
        )
        WHERE canonical IN (SELECT derivative_id FROM board_only)
        GROUP BY canonical
    ),
    pairs AS (
        SELECT derivative_id, base_model_id, relation, architecture, root_id, 'hub' AS pair_source,
               parameters, size_bytes, base_parameters, base_size_bytes
        FROM hub_pairs
        UNION ALL
        SELECT o.derivative_id, o.base_model_id, o.relation,
               if(ifNull(d.architecture, '') != '', d.architecture, ifNull(a.architecture, '')),
               o.base_model_id, 'board',
               d.parameters, d.size_bytes, b.parameters, b.size_bytes
        FROM board_only AS o
        LEFT JOIN hub_models AS d ON d.repo_id = o.derivative_id
        LEFT JOIN hub_models AS b ON b.repo_id = o.base_model_id
        LEFT JOIN board_arch AS a ON a.model_id = o.derivative_id
        SETTINGS join_use_nulls = 1
    ),
    sized AS (
        SELECT p.*,
               ifNull(p.parameters, 0) > 0 AS d_hub,
               ifNull(p.base_parameters, 0) > 0 AS b_hub,
               if(d_hub, toFloat64(p.parameters), tupleElement(dp.given, 1)) AS d_params,
               if(b_hub, toFloat64(p.base_parameters), tupleElement(bp.given, 1)) AS b_params,
               multiIf(d_hub, '', ifNull(tupleElement(dp.given, 2), '')) AS d_board,
               multiIf(b_hub, '', ifNull(tupleElement(bp.given, 2), '')) AS b_board,
               ifNull(p.size_bytes, 0) > 0 AND ifNull(p.base_size_bytes, 0) > 0 AS bytes_known
        FROM pairs AS p
        LEFT JOIN board_params AS dp ON dp.model_id = p.derivative_id
        LEFT JOIN board_params AS bp ON bp.model_id = p.base_model_id
        SETTINGS join_use_nulls = 1
    )
SELECT
    derivative_id,
    base_model_id,
    relation,
    architecture,
    root_id,
    pair_source,
    d_params AS derivative_parameters,
    b_params AS base_parameters,
    multiIf(NOT (ifNull(d_params, 0) > 0 AND ifNull(b_params, 0) > 0), '',
            d_hub AND b_hub, 'hub', d_board != '', d_board, b_board) AS parameters_source,
    if(ifNull(d_params, 0) > 0 AND ifNull(b_params, 0) > 0, d_params / b_params, NULL)
        AS parameter_ratio,
    if(bytes_known, size_bytes / base_size_bytes, NULL) AS byte_ratio,
    if(bytes_known, size_bytes < base_size_bytes, d_params < b_params) AS smaller
FROM sized
WHERE ifNull(d_params, 0) > 0 AND ifNull(b_params, 0) > 0 OR bytes_known;
